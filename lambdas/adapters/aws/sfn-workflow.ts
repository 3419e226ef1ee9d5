import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { SagaInput, WorkflowKind, WorkflowStarter } from '../../ports/workflow';

/**
 * A Step Functions client, made here (the workflow and the task callbacks share one), so the
 * composition loads it on first use with only the commands used.
 */
export function sfnClient(): SFNClient {
  return new SFNClient({});
}

/**
 * Starts an action's workflow on Step Functions. The Standard saga's execution name is the
 * action id, which makes its start idempotent: a retried intake that starts it again gets
 * ExecutionAlreadyExists, which means the saga is already on its way. An unattended action
 * starts the Express run instead (when the stack has one): Express names are not unique, so a
 * retried start may run it twice, which is safe because every task it runs is idempotent
 * (exactly-once step records, single-use grants, conditional status moves).
 */
export class StepFunctionsWorkflow implements WorkflowStarter {
  constructor(
    private readonly options: { stateMachineArn: string; runStateMachineArn?: string; client: SFNClient },
  ) {}

  async start(actionId: string, input: SagaInput, kind: WorkflowKind = 'attended'): Promise<void> {
    const express = kind === 'unattended' && this.options.runStateMachineArn !== undefined;
    try {
      await this.options.client.send(
        new StartExecutionCommand({
          stateMachineArn: express ? this.options.runStateMachineArn : this.options.stateMachineArn,
          // The action id: its history (CloudWatch Logs for Express) is found by it. A resumed
          // action's earlier saga may have ended under that name, which stays taken for 90 days.
          name: kind === 'resumed' ? `${actionId}-resumed-${Date.now().toString(36)}` : actionId,
          input: JSON.stringify(input),
        }),
      );
    } catch (error) {
      if (error instanceof ExecutionAlreadyExists || (error instanceof Error && error.name === 'ExecutionAlreadyExists')) {
        return;
      }
      throw error;
    }
  }
}
