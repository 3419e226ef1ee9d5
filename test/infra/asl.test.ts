import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/constructs/airlock-function';
import { ACTION_RUN_ASL, APPROVAL_STATE, aslPlaceholders, renderAsl } from '../../lib/constructs/saga';
import { DEFAULT_SAGA_TIMEOUTS, EXPRESS_MAX_EXECUTION_SECONDS, EXPRESS_TASK_MAX_SECONDS, SagaTimeoutError, TASK_TIMEOUT_MARGIN_SECONDS } from '../../lambdas/saga/timeouts';

interface State {
  Type: string;
  Resource?: string;
  Next?: string;
  End?: boolean;
  TimeoutSeconds?: number;
  Retry?: { ErrorEquals: string[] }[];
  Catch?: { ErrorEquals: string[]; Next: string }[];
  Parameters?: Record<string, unknown>;
  ItemProcessor?: Definition;
  Iterator?: Definition;
  Branches?: Definition[];
}
interface Definition {
  StartAt: string;
  States: Record<string, State>;
}

const dir = join(PROJECT_ROOT, 'statemachines');
const files = readdirSync(dir).filter((f) => f.endsWith('.asl.json'));

/** Every [name, state] pair, including states nested in Map and Parallel states. */
function allStates(definition: Definition): [string, State][] {
  return Object.entries(definition.States).flatMap(([name, state]) => [
    [name, state] as [string, State],
    ...[state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])]
      .filter((d): d is Definition => d !== undefined)
      .flatMap(allStates),
  ]);
}

/** Every nested definition (the top one, Map processors, Parallel branches). */
function allDefinitions(definition: Definition): Definition[] {
  return [
    definition,
    ...Object.values(definition.States).flatMap((s) =>
      [s.ItemProcessor, s.Iterator, ...(s.Branches ?? [])].filter((d): d is Definition => d !== undefined).flatMap(allDefinitions),
    ),
  ];
}

const read = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Definition;

describe('statemachines/*.asl.json', () => {
  it('includes the action saga and the action run', () => {
    expect(files).toContain('action-saga.asl.json');
    expect(files).toContain('action-run.asl.json');
  });

  describe.each(files)('%s', (file) => {
    const definition = read(file);

    it('is valid ASL according to asl-validator', () => {
      // The validator annotates its input (QueryLanguage), so give it a copy.
      const result = aslValidator(structuredClone(definition));
      expect(result.errorsText()).toBe('');
      expect(result.isValid).toBe(true);
    });

    it('starts at a state that exists, in every nested definition', () => {
      for (const d of allDefinitions(definition)) expect(Object.keys(d.States)).toContain(d.StartAt);
    });

    it('gives every Task a Retry, a Catch and, once rendered from config, an explicit TimeoutSeconds', () => {
      const tasks = allStates(definition).filter(([, s]) => s.Type === 'Task');
      expect(tasks.length).toBeGreaterThan(0);
      const rendered = JSON.parse(renderAsl(DEFAULT_SAGA_TIMEOUTS, `statemachines/${file}`).text) as Definition & { TimeoutSeconds?: number };
      const renderedTasks = new Map(allStates(rendered));
      for (const [name, task] of tasks) {
        expect(task.Retry?.length, `${name}.Retry`).toBeGreaterThan(0);
        expect(task.Catch?.length, `${name}.Catch`).toBeGreaterThan(0);
        // aws-local-stepfunctions defaults Task timeouts to 60 s; AWS to 99999999 s.
        expect(Number.isInteger(renderedTasks.get(name)?.TimeoutSeconds), `${name}.TimeoutSeconds`).toBe(true);
      }
      expect(Number.isInteger(rendered.TimeoutSeconds)).toBe(true);
    });

    it('hard-codes no TimeoutSeconds: every one is derived from config', () => {
      const text = readFileSync(join(dir, file), 'utf8');
      expect(text).not.toMatch(/"TimeoutSeconds(Path)?"\s*:/);
      expect(text).not.toMatch(/"HeartbeatSeconds(Path)?"\s*:/);
    });

    it('names states in PascalCase', () => {
      for (const [name] of allStates(definition)) expect(name).toMatch(/^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+$/);
    });

    it('uses only ${...FunctionArn} and the two workflows\' ${...WorkflowArn} substitutions', () => {
      const text = readFileSync(join(dir, file), 'utf8');
      const all = [...text.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]);
      expect(all.length).toBeGreaterThan(0);
      const workflows: string[] = all.filter((name) => name === 'SagaWorkflowArn' || name === 'RunWorkflowArn').map(String);
      expect(all.every((name) => /^[A-Za-z][A-Za-z0-9]*FunctionArn$/.test(name ?? '') || workflows.includes(name ?? ''))).toBe(true);
      expect(aslPlaceholders(text).length).toBe(new Set(all).size - new Set(workflows).size);
    });

    it('passes the task token to every callback task', () => {
      for (const [name, task] of allStates(definition).filter(([, s]) => s.Resource?.endsWith('.waitForTaskToken'))) {
        expect(JSON.stringify(task.Parameters), name).toContain('"$$.Task.Token"');
      }
    });
  });
});

describe('action saga (Standard: the waits)', () => {
  const definition = read('action-saga.asl.json');
  const states = definition.States as Record<string, State & { Default?: string; Choices?: { Variable?: string; StringEquals?: string; Next: string }[]; Result?: { next?: string } }>;

  it('re-checks policy, waits for approval with a callback, then runs the action in the Express run and waits for it', () => {
    expect(definition.StartAt).toBe('EvaluatePolicy');
    expect(states.EvaluatePolicy).toMatchObject({ Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke' });
    expect(states.EvaluatePolicy?.Parameters?.FunctionName).toBe('${SagaFunctionArn}');
    expect(states.RouteDecision?.Choices).toEqual([expect.objectContaining({ StringEquals: 'approve', Next: APPROVAL_STATE })]);
    expect(states.RouteDecision?.Default).toBe('RunAction');
    expect(states[APPROVAL_STATE]).toMatchObject({ Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken' });
    expect(states.BeginExecution?.Next).toBe('RunAction');
    expect(states.RunAction).toMatchObject({ Type: 'Task', Resource: 'arn:aws:states:::states:startExecution.sync:2' });
    expect(states.RunAction?.Parameters).toMatchObject({ StateMachineArn: '${RunWorkflowArn}', Input: { 'actionId.$': '$.actionId', 'run.$': '$.run', 'parent.$': '$$.Execution.Id' } });
    // No step, compensation or receipt logic of its own: those are the run's, defined once.
    const tasks = allStates(definition).filter(([, s]) => s.Type === 'Task').map(([n]) => n).sort();
    expect(tasks).toEqual(['BeginExecution', 'EvaluatePolicy', 'RunAction', APPROVAL_STATE].sort());
  });

  it('hands every other outcome to the run by name: an approval timeout as expired, a rejection as rejected, a denial, a failure', () => {
    const catches = [...(states[APPROVAL_STATE]?.Catch ?? []), ...(states.BeginExecution?.Catch ?? []), ...(states.EvaluatePolicy?.Catch ?? [])];
    const target = (error: string) => states[catches.find((c) => c.ErrorEquals.includes(error))?.Next ?? '']!;
    expect(target('States.Timeout').Result?.next).toBe('expire');
    expect(target('ApprovalRejected').Result?.next).toBe('reject');
    expect(target('PolicyDeniedError').Result?.next).toBe('deny');
    expect(target('States.ALL').Result?.next).toBe('fail');
    for (const error of ['States.Timeout', 'ApprovalRejected', 'PolicyDeniedError', 'States.ALL']) expect(target(error).Next).toBe('RunAction');
    // …and the run routes each of them to its Mark state, so the receipt says what happened.
    const run = read('action-run.asl.json').States as typeof states;
    const routes = Object.fromEntries((run.RouteDecision?.Choices ?? []).map((c) => [c.StringEquals, c.Next]));
    expect(routes).toMatchObject({ expire: 'MarkExpired', reject: 'MarkRejected', deny: 'MarkDenied', approve: 'HandToSaga', execute: 'HasNextStep' });
    expect(run.RouteDecision?.Default).toBe('MarkFailed');
    expect((run.MarkExpired as { Result?: { status?: string } }).Result?.status).toBe('expired');
    expect((run.MarkRejected as { Result?: { status?: string } }).Result?.status).toBe('rejected');
  });

  it('waits out a paused halt between runs, a bounded number of times, and fails by name when a run fails', () => {
    expect(states.AfterRun?.Choices).toEqual(
      expect.arrayContaining([expect.objectContaining({ Variable: '$.outcome.paused', Next: 'CountPause' }), expect.objectContaining({ StringEquals: 'failed', Next: 'ActionFailed' })]),
    );
    expect(states.CountPause?.Next).toBe('WaitWhilePaused');
    expect(states.WaitWhilePaused).toMatchObject({ Type: 'Wait', Next: 'RunAction' });
    const run = read('action-run.asl.json').States as Record<string, State & { Choices?: { And?: { Variable: string; NumericLessThan?: number }[]; Next: string }[] }>;
    const bound = run.WhilePaused?.Choices?.[0]?.And?.find((c) => c.Variable === '$.run.pauses')?.NumericLessThan;
    expect(bound).toBeGreaterThan(0);
    expect(states.RunAction?.Retry?.[0]?.ErrorEquals).toContain('States.TaskFailed');
    expect(states.RunAction?.Catch?.[0]?.Next).toBe('RunFailed');
  });

  it('is deployed with the configured timeouts, still valid ASL', () => {
    const config = { ...DEFAULT_SAGA_TIMEOUTS, approvalTimeoutSeconds: 3600, functionTimeoutSeconds: 12, connectorTimeoutSeconds: 45 };
    const { text, timeouts } = renderAsl(config);
    const deployed = JSON.parse(text) as Definition & { TimeoutSeconds: number };
    // The approval's hour, plus the approvals function's own time (it stores the expiry).
    expect(deployed.States[APPROVAL_STATE]?.TimeoutSeconds).toBe(3600 + 12 + TASK_TIMEOUT_MARGIN_SECONDS);
    expect(deployed.TimeoutSeconds).toBe(timeouts.executionSeconds);
    expect(deployed.TimeoutSeconds).toBe(3600 + timeouts.runSeconds);
    for (const [name, task] of allStates(deployed).filter(([, s]) => s.Type === 'Task')) {
      const expected =
        task.Resource?.endsWith('.waitForTaskToken') ? 3600 + 12 + TASK_TIMEOUT_MARGIN_SECONDS
        : task.Resource?.endsWith('.sync:2') ? EXPRESS_MAX_EXECUTION_SECONDS + TASK_TIMEOUT_MARGIN_SECONDS
        : 12 + TASK_TIMEOUT_MARGIN_SECONDS;
      expect(task.TimeoutSeconds, name).toBe(expected);
    }
    expect(aslValidator(deployed).isValid).toBe(true);
    // The run: each Task outlasts the Lambda it invokes (the function's own timeout fires first), the execution the Express cap.
    const run = JSON.parse(renderAsl(config, ACTION_RUN_ASL).text) as Definition & { TimeoutSeconds: number };
    expect(run.TimeoutSeconds).toBe(EXPRESS_MAX_EXECUTION_SECONDS);
    for (const [name, task] of allStates(run).filter(([, s]) => s.Type === 'Task')) {
      const params = task.Parameters ?? {};
      expect(task.TimeoutSeconds, name).toBe('FunctionName.$' in params ? 45 + TASK_TIMEOUT_MARGIN_SECONDS : 12 + TASK_TIMEOUT_MARGIN_SECONDS);
    }
    expect(aslValidator(run).isValid).toBe(true);
  });

  it('refuses a config whose execution would outlast a Standard workflow, naming the fields', () => {
    const config = { ...DEFAULT_SAGA_TIMEOUTS, approvalTimeoutSeconds: 31_536_000 };
    expect(() => renderAsl(config)).toThrow(SagaTimeoutError);
    expect(() => renderAsl(config)).toThrow(/approvalTimeoutSeconds.*lambda\.timeoutSeconds.*lambda\.connectorTimeoutSeconds/);
  });

  it('refuses a connector timeout one step attempt of the Express run could not hold', () => {
    const config = { ...DEFAULT_SAGA_TIMEOUTS, connectorTimeoutSeconds: EXPRESS_TASK_MAX_SECONDS };
    expect(() => renderAsl(config, ACTION_RUN_ASL)).toThrow(/RunStep.*lambda\.connectorTimeoutSeconds/);
    expect(() => renderAsl({ ...config, connectorTimeoutSeconds: EXPRESS_TASK_MAX_SECONDS - TASK_TIMEOUT_MARGIN_SECONDS }, ACTION_RUN_ASL)).not.toThrow();
  });
});

describe('asl-validator itself', () => {
  it('rejects a definition whose transition target is missing (the checks above can fail)', () => {
    const broken = { StartAt: 'DoThing', States: { DoThing: { Type: 'Pass', Next: 'Nowhere' } } };
    const result = aslValidator(broken);
    expect(result.isValid).toBe(false);
    expect(result.errorsText()).toMatch(/Nowhere|MISSING_TRANSITION_TARGET/);
  });
});

describe('action run structure (Express: the steps, defined once)', () => {
  const definition = read('action-run.asl.json');
  const states = definition.States as Record<string, State & { Default?: string; Choices?: { Next: string }[]; Branches?: Definition[]; ResultSelector?: Record<string, unknown>; Retry?: { ErrorEquals: string[]; JitterStrategy?: string; MaxDelaySeconds?: number; MaxAttempts?: number }[] }>;
  const successors = (name: string): string[] => {
    const s = states[name]!;
    return [s.Next, s.Default, ...(s.Choices ?? []).map((c) => c.Next), ...(s.Catch ?? []).map((c) => c.Next)].filter((n): n is string => typeof n === 'string');
  };

  it('ends every path in WriteReceipt before any terminal state, unless it hands the action to the saga', () => {
    const afterReceipt = new Set(['WriteReceipt', 'RecordReceipt', 'ReportOutcome', 'ActionFailed', 'ReportResult', 'ReceiptFailed']);
    // The saga runs the action again (and writes its receipt); a paused run is run again by the saga that is waiting for it;
    // a run that could not compensate (CompensationOwed) leaves the action unfinished, not settled, for the saga that resumes it.
    const handOver = new Set(['HandToSaga', 'HandedOver', 'ReportPaused', 'CompensationOwed']);
    for (const start of Object.keys(states).filter((n) => !afterReceipt.has(n) && !handOver.has(n))) {
      const seen = new Set<string>();
      const queue = [start];
      while (queue.length > 0) {
        const name = queue.pop()!;
        if (seen.has(name) || name === 'WriteReceipt' || handOver.has(name)) continue;
        seen.add(name);
        const s = states[name]!;
        const ends = ['Succeed', 'Fail'].includes(s.Type) || s.End === true;
        expect(ends ? `${start} reaches ${name} without a receipt` : 'ok').toBe('ok');
        queue.push(...successors(name));
      }
    }
    expect(states.HandToSaga).toMatchObject({ Resource: 'arn:aws:states:::states:startExecution', Parameters: { StateMachineArn: '${SagaWorkflowArn}', 'Name.$': '$.actionId' } });
  });

  it('retries a step attempt on retryable named errors with capped, jittered backoff, waits out a pause, and compensates on anything else', () => {
    const step = states.ExecuteStep!;
    expect(step.Type).toBe('Parallel');
    const retry = step.Retry![0]!;
    expect(retry.ErrorEquals).toEqual(expect.arrayContaining(['VendorUnavailableError', 'VendorTimeoutError']));
    expect(retry.ErrorEquals).not.toContain('VendorRejectedError');
    expect(retry.ErrorEquals).not.toContain('States.ALL');
    expect(retry.JitterStrategy).toBe('FULL');
    expect(retry.MaxDelaySeconds).toBeGreaterThan(0);
    // A halt in mode pause is waited out by the Standard saga (an Express run lasts 5 minutes at
    // most); a stop or an open breaker is not retried at all (compensation follows at once).
    expect(step.Catch).toEqual([
      expect.objectContaining({ ErrorEquals: ['ActionPausedError'], Next: 'WhilePaused' }),
      expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'PrepareCompensation' }),
    ]);
    const retried = step.Retry!.flatMap((r) => r.ErrorEquals);
    expect(retried).not.toContain('ActionHaltedError');
    expect(retried).not.toContain('CircuitOpenError');
    expect(retried).not.toContain('ActionPausedError');
    // One attempt = a fresh grant + one connector call.
    const branch = step.Branches![0]!;
    expect(branch.StartAt).toBe('IssueGrant');
    expect(branch.States.IssueGrant?.Next).toBe('RunStep');
    expect(branch.States.RunStep?.Parameters).toMatchObject({ 'FunctionName.$': '$.grant.functionName' });
  });

  it('a failure outside every step compensates before it settles failed, and never settles failed with a step owed', () => {
    // Found by the chaos storm: MarkFailed settled at once and left completed commit steps in place.
    expect(states.MarkFailed?.Next).toBe('CompensateBeforeFailing');
    expect(states.CompensateBeforeFailing?.Default).toBe('NoteFailing');
    expect(states.CompensateBeforeFailing?.Choices?.map((c) => c.Next)).toEqual(['SettleAction']);
    expect(states.NoteFailing?.Next).toBe('PrepareCompensation');
    expect(states.PrepareCompensation?.Catch?.[0]?.Next).toBe('MarkFailed');
    expect(states.SettleAction?.Catch?.[0]).toEqual(expect.objectContaining({ ErrorEquals: ['CompensationOwedError'], Next: 'CompensationOwed' }));
    expect(states.CompensationOwed?.Type).toBe('Fail');
  });

  it('runs steps one at a time in plan order, advancing in the step\'s own output, and compensates in a loop that never stops early', () => {
    expect(states.EvaluatePolicy?.Next).toBe('RouteDecision');
    expect(states.EvaluatePolicy?.ResultSelector).toMatchObject({ index: 0 });
    expect(states.HasNextStep?.Default).toBe('MarkCompleted');
    // Per step: HasNextStep, ExecuteStep and its two Tasks; no Pass state advances the index.
    expect(states.ExecuteStep?.Next).toBe('HasNextStep');
    expect(JSON.stringify(states.ExecuteStep?.ResultSelector)).toContain('States.MathAdd($[0].index, 1)');
    // A forward step still in doubt is retried to its end before anything is undone, then the
    // compensations are listed again; a step that cannot be told never stops the loop.
    expect(states.PrepareCompensation?.Next).toBe('AnyStepInDoubt');
    const anyInDoubt = states.AnyStepInDoubt as unknown as { Choices: { Variable: string; Next: string }[]; Default: string };
    expect(anyInDoubt.Choices).toEqual([expect.objectContaining({ Variable: '$.undo.inDoubt[0]', Next: 'ResolveInDoubt' })]);
    expect(anyInDoubt.Default).toBe('HasNextCompensation');
    const resolve = states.ResolveInDoubt as unknown as {
      Type: string; ItemsPath: string; MaxConcurrency: number; Next: string; Catch: { Next: string }[];
      ItemProcessor: { States: Record<string, { Type: string; Retry?: { MaxAttempts: number }[]; Catch?: { ErrorEquals: string[]; Next: string }[]; Branches?: { States: Record<string, { Parameters?: { Payload?: unknown } }> }[] }> };
    };
    expect(resolve).toMatchObject({ Type: 'Map', ItemsPath: '$.undo.inDoubt', MaxConcurrency: 1, Next: 'RecountCompensation' });
    expect(resolve.Catch[0]!.Next).toBe('RecountCompensation');
    const item = resolve.ItemProcessor.States.ResolveStep!;
    expect(item.Retry![0]!.MaxAttempts).toBe(states.CompensateStep!.Retry![0]!.MaxAttempts);
    expect(item.Catch).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'StillInDoubt' })]);
    expect(item.Branches![0]!.States.IssueResolveGrant!.Parameters!.Payload).toMatchObject({ task: 'IssueGrant', kind: 'forward', resolve: true });
    expect(states.RecountCompensation?.Next).toBe('HasNextCompensation');
    expect(states.RecountCompensation?.Catch?.[0]?.Next).toBe('MarkFailed');
    const comp = states.CompensateStep!;
    expect(comp.Next).toBe('HasNextCompensation');
    expect(comp.Retry![0]!.MaxAttempts).toBeGreaterThan(states.ExecuteStep!.Retry![0]!.MaxAttempts!);
    expect(comp.Catch![0]!.Next).toBe('RecordCompensationFailure');
    expect(states.RecordCompensationFailure?.Next).toBe('AdvanceCompensation');
    expect(states.AdvanceCompensation?.Next).toBe('HasNextCompensation');
    expect(states.HasNextCompensation?.Default).toBe('FinishCompensation');
    expect(states.FinishCompensation?.Next).toBe('SettleAction');
  });
});
