import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Policy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  applySagaTimeouts,
  deriveSagaTimeouts,
  SagaTimeoutError,
  sagaTimeoutProblems,
  type SagaTimeoutConfig,
  type SagaTimeouts,
} from '../../lambdas/saga/timeouts';
import { type AirlockFunction, PROJECT_ROOT } from './airlock-function';
import { EnvNames } from '../../lambdas/composition/env';

/** Env var holding the saga's ARN in the functions that start or answer it. */
export const STATE_MACHINE_ARN_ENV = EnvNames.stateMachineArn;
/** The saga's ASL file, relative to the repository root. */
export const ACTION_SAGA_ASL = 'statemachines/action-saga.asl.json';
/** The Express run's ASL file (steps, compensation, receipt), relative to the repository root. */
export const ACTION_RUN_ASL = 'statemachines/action-run.asl.json';
/** The Task that waits for a human; its TimeoutSeconds is `approvalTimeoutSeconds`. */
export const APPROVAL_STATE = 'WaitForApproval';

/** `${SagaFunctionArn}`-style placeholders: the only substitutions the ASL may use. */
const PLACEHOLDER = /\$\{([A-Za-z][A-Za-z0-9]*FunctionArn)\}/g;

/** Names of the `${...FunctionArn}` placeholders in an ASL text, sorted and unique. */
export function aslPlaceholders(aslText: string): string[] {
  return [...new Set([...aslText.matchAll(PLACEHOLDER)].map((m) => m[1] as string))].sort();
}

/** Reads and parses an ASL file (relative to the repository root). */
export function readAsl(relativePath: string = ACTION_SAGA_ASL): unknown {
  return JSON.parse(readFileSync(join(PROJECT_ROOT, relativePath), 'utf8')) as unknown;
}

/** An ASL definition as deployed: the file with every TimeoutSeconds derived from config. */
export interface RenderedAsl {
  text: string;
  timeouts: SagaTimeouts;
}

/**
 * Reads an ASL file and writes the derived TimeoutSeconds into it (the execution's and every
 * Task's; see lambdas/saga/timeouts.ts). Done on the parsed JSON rather than with
 * definitionSubstitutions, which can only insert strings. Throws SagaTimeoutError when the
 * config cannot be honoured (lib/config.ts refuses such configs first).
 */
export function renderAsl(config: SagaTimeoutConfig, relativePath: string = ACTION_SAGA_ASL, options: { express?: boolean } = {}): RenderedAsl {
  const definition = readAsl(relativePath);
  const express = options.express ?? relativePath === ACTION_RUN_ASL;
  const timeouts = deriveSagaTimeouts(definition, config, { express });
  const problems = sagaTimeoutProblems(timeouts, config, { express });
  if (problems.length > 0) throw new SagaTimeoutError(`${relativePath}: ${problems.join('; ')}`);
  return { text: JSON.stringify(applySagaTimeouts(definition, timeouts), null, 2), timeouts };
}

/** Props of {@link ActionSaga}. */
export interface ActionSagaProps {
  /**
   * Functions the ASL may call, by placeholder name (`SagaFunctionArn`). Only those the
   * ASL actually references are substituted and granted lambda:InvokeFunction.
   */
  readonly functions: Readonly<Record<string, AirlockFunction>>;
  /**
   * Functions the saga calls by a name it reads at run time (`FunctionName.$`): the connector
   * functions, chosen per step by IssueGrant. They get lambda:InvokeFunction too.
   */
  readonly dynamicTargets?: readonly AirlockFunction[];
  /** What the execution's and every Task's TimeoutSeconds are derived from. */
  readonly timeouts: SagaTimeoutConfig;
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** Prefix of the vended-logs group name, to keep names unique per stack. */
  readonly logGroupPrefix: string;
}

/**
 * The action saga: a STANDARD state machine whose only definition is the ASL file, loaded
 * as a string so its states are in the template (and visible to assertions).
 */
export class ActionSaga extends Construct {
  readonly stateMachine: StateMachine;
  readonly logGroup: LogGroup;
  /** Functions the definition invokes, by placeholder. */
  readonly invoked: ReadonlyMap<string, AirlockFunction>;
  /** The derived TimeoutSeconds (execution and every Task). */
  readonly timeouts: SagaTimeouts;

  constructor(scope: Construct, id: string, props: ActionSagaProps) {
    super(scope, id);

    const { text: definition, timeouts } = renderAsl(props.timeouts);
    this.timeouts = timeouts;
    const invoked = new Map<string, AirlockFunction>();
    for (const placeholder of aslPlaceholders(definition)) {
      const fn = props.functions[placeholder];
      if (!fn) {
        throw new Error(
          `${ACTION_SAGA_ASL} uses \${${placeholder}}, which no function provides. Known: ${Object.keys(props.functions).sort().join(', ')}`,
        );
      }
      invoked.set(placeholder, fn);
    }
    this.invoked = invoked;

    // The /aws/vendedlogs/ prefix keeps CloudWatch Logs from growing an account-wide
    // resource policy per log group (its size is capped).
    this.logGroup = new LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${props.logGroupPrefix}-action-saga`,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromString(definition),
      definitionSubstitutions: Object.fromEntries([...invoked].map(([name, fn]) => [name, fn.function.functionArn])),
      tracingEnabled: true,
      logs: {
        destination: this.logGroup,
        level: LogLevel.ALL,
        // Execution data holds task tokens (anyone with one can approve the step) and the
        // action's arguments, which may carry PII; ALL still records every transition.
        includeExecutionData: false,
      },
    });

    const targets = [...new Set([...invoked.values(), ...(props.dynamicTargets ?? [])])];
    if (targets.length > 0) {
      // Exactly the functions the ASL names or IssueGrant may pick; no `:*` alias/version
      // wildcard, because the definition calls the unqualified ARNs.
      this.stateMachine.addToRolePolicy(
        new PolicyStatement({
          sid: 'InvokeSagaFunctions',
          actions: ['lambda:InvokeFunction'],
          resources: targets.map((fn) => fn.function.functionArn),
        }),
      );
    }

    const defaultPolicy = this.stateMachine.role.node.tryFindChild('DefaultPolicy');
    if (defaultPolicy) {
      Validations.of(defaultPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Step Functions log delivery (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) support no resource-level permissions; CDK adds them for logging and tracing. Lambda invocation is scoped to exact ARNs.',
      });
    }
  }

  /**
   * Lets a function start executions of this saga (and nothing else on it) and sets
   * STATE_MACHINE_ARN. The function must not also be one the saga invokes (dependency cycle).
   */
  bindStarter(fn: AirlockFunction): void {
    if ([...this.invoked.values()].includes(fn)) {
      throw new Error(`${fn.node.path} is invoked by the saga and cannot also reference it`);
    }
    fn.addEnvironment(STATE_MACHINE_ARN_ENV, this.stateMachine.stateMachineArn);
    this.stateMachine.grantStartExecution(fn.role);
  }

  /**
   * Lets a function answer WaitForApproval with SendTaskSuccess / SendTaskFailure. The
   * service authorization reference lists no resource types for these actions, so the
   * statement must name "*"; the task token itself is the capability, and it is never
   * logged (includeExecutionData is off).
   */
  bindTaskResponder(fn: AirlockFunction, options: { failOnly?: boolean } = {}): void {
    // No STATE_MACHINE_ARN here: the saga invokes this function, so a reference back to the
    // state machine would be a CloudFormation dependency cycle, and the token is enough.
    const policy = new Policy(fn, 'SagaTaskResponsePolicy', {
      roles: [fn.role],
      statements: [
        new PolicyStatement({
          sid: 'AnswerApprovalTasks',
          // A cancel only ever fails the wait: failOnly withholds SendTaskSuccess (nothing approved).
          actions: options.failOnly ? ['states:SendTaskFailure'] : ['states:SendTaskSuccess', 'states:SendTaskFailure'],
          resources: ['*'],
        }),
      ],
    });
    Validations.of(policy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'states:SendTaskSuccess and states:SendTaskFailure support no resource-level permissions (no resource types in the Step Functions service authorization reference), so Resource must be "*". Only the approvals function (votes) and the intake function (the cancel route) get them; a caller also needs the unguessable task token, which only the ledger holds.',
    });
  }
}
