import { Policy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { EnvNames } from '../../lambdas/composition/env';
import type { AirlockFunction } from './airlock-function';

/** What RunRead leaves for the rest of the saga function's time after a connector gave up (the receipt, the hand-off). */
export const READ_PATH_MARGIN_SECONDS = 3;

/** The functions the read fast path joins (issue 17). */
export interface ReadPathProps {
  /** Invokes RunRead synchronously, and nothing else. */
  readonly intake: AirlockFunction;
  /** Serves RunRead: the saga function. */
  readonly saga: AirlockFunction;
  /** RunRead's calls: the connector functions and the receipts function, by exact ARN. */
  readonly connectors: readonly AirlockFunction[];
  readonly receipts: AirlockFunction;
  /** The saga function's timeout: RunRead stops waiting for a connector before it runs out. */
  readonly sagaTimeoutSeconds: number;
}

/**
 * Wires the read fast path: intake may invoke the saga function (READ_FUNCTION_ARN) and only
 * it; the saga function may invoke the connector functions and the receipts function, the
 * ones its Task states already reach through the state machine. Exact ARNs, no `:*`: every
 * call names an unqualified function.
 */
export function bindReadPath(props: ReadPathProps): void {
  const { intake, saga, receipts, connectors } = props;
  intake.addEnvironment(EnvNames.readFunction, saga.function.functionArn);
  new Policy(intake, 'ReadPathInvokePolicy', {
    statements: [new PolicyStatement({ sid: 'InvokeRunRead', actions: ['lambda:InvokeFunction'], resources: [saga.function.functionArn] })],
  }).attachToRole(intake.role);
  saga.addEnvironment(EnvNames.receiptsFunction, receipts.function.functionArn);
  saga.addEnvironment(EnvNames.readConnectorTimeoutMs, String(Math.max(1, props.sagaTimeoutSeconds - READ_PATH_MARGIN_SECONDS) * 1000));
  new Policy(saga, 'ReadPathCallsPolicy', {
    statements: [
      new PolicyStatement({
        sid: 'InvokeReadPathFunctions',
        actions: ['lambda:InvokeFunction'],
        resources: [...connectors, receipts].map((fn) => fn.function.functionArn),
      }),
    ],
  }).attachToRole(saga.role);
}
