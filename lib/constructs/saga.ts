import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArnFormat, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
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
/** Env var holding the Express run's ARN in the function that starts unattended actions. */
export const RUN_STATE_MACHINE_ARN_ENV = EnvNames.runStateMachineArn;
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

/** Functions an ASL text names by placeholder, each looked up in `functions`. */
function invokedBy(definition: string, file: string, functions: Readonly<Record<string, AirlockFunction>>): Map<string, AirlockFunction> {
  const invoked = new Map<string, AirlockFunction>();
  for (const placeholder of aslPlaceholders(definition)) {
    const fn = functions[placeholder];
    if (!fn) throw new Error(`${file} uses \${${placeholder}}, which no function provides. Known: ${Object.keys(functions).sort().join(', ')}`);
    invoked.set(placeholder, fn);
  }
  return invoked;
}

/**
 * The action's two workflows, each defined only by its ASL file (loaded as a string so its
 * states are in the template, visible to assertions):
 *
 * - the run (EXPRESS, statemachines/action-run.asl.json): steps, compensation, settle and
 *   receipt. Intake starts it for an action policy allows with no approval: billed per request
 *   and duration, not per transition.
 * - the saga (STANDARD, statemachines/action-saga.asl.json): the waits. Intake starts it for an
 *   action that needs an approval; the run hands an action to it (an approval required at run
 *   time, a paused halt); the reconciler starts it for an action a run left unfinished. It runs
 *   the run synchronously (`startExecution.sync:2`) once nothing is left to wait for.
 *
 * The run knows the saga's ARN from the saga's resource (the run depends on the saga); the
 * saga knows the run's from its fixed name, so the two definitions form no dependency cycle.
 */
export class ActionSaga extends Construct {
  /** The Standard saga. */
  readonly stateMachine: StateMachine;
  /** The Express run. */
  readonly runStateMachine: StateMachine;
  readonly logGroup: LogGroup;
  readonly runLogGroup: LogGroup;
  /** Functions the saga's definition invokes, by placeholder. */
  readonly invoked: ReadonlyMap<string, AirlockFunction>;
  /** Functions the run's definition invokes, by placeholder (connectors, named at run time, besides). */
  readonly runInvoked: ReadonlyMap<string, AirlockFunction>;
  /** The saga's derived TimeoutSeconds (execution and every Task). */
  readonly timeouts: SagaTimeouts;
  /** The run's (its execution's: the Express cap). */
  readonly runTimeouts: SagaTimeouts;

  constructor(scope: Construct, id: string, props: ActionSagaProps) {
    super(scope, id);
    const stack = Stack.of(this);

    const saga = renderAsl(props.timeouts);
    const run = renderAsl(props.timeouts, ACTION_RUN_ASL, { express: true });
    this.timeouts = saga.timeouts;
    this.runTimeouts = run.timeouts;
    this.invoked = invokedBy(saga.text, ACTION_SAGA_ASL, props.functions);
    this.runInvoked = invokedBy(run.text, ACTION_RUN_ASL, props.functions);

    // The /aws/vendedlogs/ prefix keeps CloudWatch Logs from growing an account-wide
    // resource policy per log group (its size is capped).
    this.logGroup = new LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${props.logGroupPrefix}-action-saga`,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    // An Express workflow keeps no execution history of its own: these logs are its history.
    this.runLogGroup = new LogGroup(this, 'RunLogs', {
      logGroupName: `/aws/vendedlogs/states/${props.logGroupPrefix}-action-run`,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const logs = (destination: LogGroup) => ({
      destination,
      level: LogLevel.ALL,
      // Execution data holds task tokens (anyone with one can approve the step), grants and
      // the action's arguments, which may carry PII; ALL still records every transition.
      includeExecutionData: false,
    });

    const runName = `${stack.stackName}-action-run`.slice(0, 80);
    const runArn = stack.formatArn({ service: 'states', resource: 'stateMachine', resourceName: runName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromString(saga.text),
      definitionSubstitutions: { ...Object.fromEntries([...this.invoked].map(([name, fn]) => [name, fn.function.functionArn])), RunWorkflowArn: runArn },
      tracingEnabled: true,
      logs: logs(this.logGroup),
    });
    this.runStateMachine = new StateMachine(this, 'RunStateMachine', {
      stateMachineName: runName,
      stateMachineType: StateMachineType.EXPRESS,
      definitionBody: DefinitionBody.fromString(run.text),
      definitionSubstitutions: {
        ...Object.fromEntries([...this.runInvoked].map(([name, fn]) => [name, fn.function.functionArn])),
        SagaWorkflowArn: this.stateMachine.stateMachineArn,
      },
      tracingEnabled: true,
      logs: logs(this.runLogGroup),
    });

    // Exactly the functions each ASL names or IssueGrant may pick; no `:*` alias/version
    // wildcard, because the definitions call the unqualified ARNs.
    const invoke = (machine: StateMachine, functions: AirlockFunction[]) =>
      machine.addToRolePolicy(new PolicyStatement({ sid: 'InvokeSagaFunctions', actions: ['lambda:InvokeFunction'], resources: [...new Set(functions)].map((fn) => fn.function.functionArn) }));
    invoke(this.stateMachine, [...this.invoked.values()]);
    invoke(this.runStateMachine, [...this.runInvoked.values(), ...(props.dynamicTargets ?? [])]);

    // The saga runs the run and waits for it (.sync:2): start it, read and stop its executions,
    // and the managed EventBridge rule Step Functions uses to learn that a child ended.
    this.stateMachine.addToRolePolicy(new PolicyStatement({ sid: 'RunTheRun', actions: ['states:StartExecution'], resources: [runArn] }));
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: 'WatchTheRun',
        actions: ['states:DescribeExecution', 'states:StopExecution'],
        resources: [
          stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${runName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
          stack.formatArn({ service: 'states', resource: 'express', resourceName: `${runName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
        ],
      }),
    );
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: 'SyncRunEvents',
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [stack.formatArn({ service: 'events', resource: 'rule', resourceName: 'StepFunctionsGetEventsForStepFunctionsExecutionRule' })],
      }),
    );
    // The run hands an action to the saga (HandToSaga), by name.
    this.stateMachine.grantStartExecution(this.runStateMachine.role);

    for (const machine of [this.stateMachine, this.runStateMachine]) {
      const defaultPolicy = machine.role.node.tryFindChild('DefaultPolicy');
      if (!defaultPolicy) continue;
      Validations.of(defaultPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Step Functions log delivery (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) support no resource-level permissions; CDK adds them for logging and tracing. Lambda invocation is scoped to exact ARNs.',
      });
      Validations.of(defaultPolicy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${runName}:*]`,
        reason: 'Executions of the Express run are named at run time: the saga may read and stop only executions of that one state machine.',
      });
      Validations.of(defaultPolicy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:express:${runName}:*]`,
        reason: 'Executions of the Express run are named at run time: the saga may read and stop only executions of that one state machine.',
      });
    }
  }

  /**
   * Lets a function start the action's workflows (and nothing else on them) and sets
   * STATE_MACHINE_ARN and RUN_STATE_MACHINE_ARN. The function must not also be one either
   * workflow invokes (dependency cycle).
   */
  bindStarter(fn: AirlockFunction): void {
    if ([...this.invoked.values(), ...this.runInvoked.values()].includes(fn)) {
      throw new Error(`${fn.node.path} is invoked by the saga and cannot also reference it`);
    }
    fn.addEnvironment(STATE_MACHINE_ARN_ENV, this.stateMachine.stateMachineArn);
    fn.addEnvironment(RUN_STATE_MACHINE_ARN_ENV, this.runStateMachine.stateMachineArn);
    this.stateMachine.grantStartExecution(fn.role);
    this.runStateMachine.grantStartExecution(fn.role);
  }

  /**
   * Lets a function hand actions a dead workflow left unfinished to the saga (saga/resume.ts):
   * StartExecution on the saga only, and STATE_MACHINE_ARN.
   */
  bindResumer(fn: AirlockFunction): void {
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
