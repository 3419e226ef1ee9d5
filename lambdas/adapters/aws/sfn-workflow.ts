import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { SagaInput, WorkflowStarter } from '../../ports/workflow';

/**
 * Starts the saga on Step Functions. The execution name is the action id, which makes the
 * start itself idempotent: a retried intake that starts it again gets ExecutionAlreadyExists,
 * which means the saga is already on its way.
 */
export class StepFunctionsWorkflow implements WorkflowStarter {
  constructor(
    private readonly options: { stateMachineArn: string; client: SFNClient },
  ) {}

  async start(actionId: string, input: SagaInput): Promise<void> {
    try {
      await this.options.client.send(
        new StartExecutionCommand({
          stateMachineArn: this.options.stateMachineArn,
          name: actionId,
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
