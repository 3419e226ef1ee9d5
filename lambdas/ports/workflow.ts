/**
 * Starting the saga for an accepted action. Step Functions in AWS (execution name = action
 * id, so a second start is a no-op); the local ASL runner in local mode.
 */
export interface WorkflowStarter {
  start(actionId: string, input: SagaInput): Promise<void>;
}

/** The saga's input: only ids; every task reads the ledger for the rest. */
export interface SagaInput {
  actionId: string;
}
