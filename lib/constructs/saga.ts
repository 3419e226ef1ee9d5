import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Policy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { type AirlockFunction, PROJECT_ROOT } from './airlock-function';

/** Env var holding the saga's ARN in the functions that start or answer it. */
export const STATE_MACHINE_ARN_ENV = 'STATE_MACHINE_ARN';
/** The saga's ASL file, relative to the repository root. */
export const ACTION_SAGA_ASL = 'statemachines/action-saga.asl.json';
/** The Task that waits for a human; its TimeoutSeconds comes from config. */
export const APPROVAL_STATE = 'WaitForApproval';

/** `${PolicyFunctionArn}`-style placeholders: the only substitutions the ASL may use. */
const PLACEHOLDER = /\$\{([A-Za-z][A-Za-z0-9]*FunctionArn)\}/g;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isJsonObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every `States` map in a definition, including those inside Map and Parallel states. */
function allStateMaps(node: Json): JsonObject[] {
  const found: JsonObject[] = [];
  const visit = (value: Json): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (isJsonObject(value)) {
      for (const [key, child] of Object.entries(value)) {
        if (key === 'States' && isJsonObject(child)) found.push(child);
        visit(child);
      }
    }
  };
  visit(node);
  return found;
}

/** Names of the `${...FunctionArn}` placeholders in an ASL text, sorted and unique. */
export function aslPlaceholders(aslText: string): string[] {
  return [...new Set([...aslText.matchAll(PLACEHOLDER)].map((m) => m[1] as string))].sort();
}

/**
 * Reads an ASL file and sets the TimeoutSeconds of named states. The file stays valid JSON
 * with a sensible number in it (the local runner uses it as is); only the deployed copy
 * takes the configured value, because definitionSubstitutions can only insert strings.
 */
export function loadAsl(relativePath: string, timeouts: Record<string, number>): string {
  const parsed = JSON.parse(readFileSync(join(PROJECT_ROOT, relativePath), 'utf8')) as Json;
  if (!isJsonObject(parsed)) throw new Error(`${relativePath} is not a JSON object`);
  const stateMaps = allStateMaps(parsed);
  for (const [stateName, seconds] of Object.entries(timeouts)) {
    const state = stateMaps.map((states) => states[stateName]).find(isJsonObject);
    if (!state) throw new Error(`${relativePath} has no state ${stateName}; config cannot set its TimeoutSeconds`);
    state.TimeoutSeconds = seconds;
  }
  return JSON.stringify(parsed, null, 2);
}

/** Props of {@link ActionSaga}. */
export interface ActionSagaProps {
  /**
   * Functions the ASL may call, by placeholder name (`PolicyFunctionArn`). Only those the
   * ASL actually references are substituted and granted lambda:InvokeFunction.
   */
  readonly functions: Readonly<Record<string, AirlockFunction>>;
  /**
   * Functions the saga calls by a name it reads at run time (`FunctionName.$`): the connector
   * functions, chosen per step by IssueGrant. They get lambda:InvokeFunction too.
   */
  readonly dynamicTargets?: readonly AirlockFunction[];
  readonly approvalTimeoutSeconds: number;
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

  constructor(scope: Construct, id: string, props: ActionSagaProps) {
    super(scope, id);

    const definition = loadAsl(ACTION_SAGA_ASL, { [APPROVAL_STATE]: props.approvalTimeoutSeconds });
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
  bindTaskResponder(fn: AirlockFunction): void {
    // No STATE_MACHINE_ARN here: the saga invokes this function, so a reference back to the
    // state machine would be a CloudFormation dependency cycle, and the token is enough.
    const policy = new Policy(fn, 'SagaTaskResponsePolicy', {
      roles: [fn.role],
      statements: [
        new PolicyStatement({
          sid: 'AnswerApprovalTasks',
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
          resources: ['*'],
        }),
      ],
    });
    Validations.of(policy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'states:SendTaskSuccess and states:SendTaskFailure support no resource-level permissions (no resource types in the Step Functions service authorization reference), so Resource must be "*". Only the approvals function gets them; a caller also needs the unguessable task token.',
    });
  }
}
