import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/constructs/airlock-function';
import { APPROVAL_STATE, aslPlaceholders, renderAsl } from '../../lib/constructs/saga';
import { DEFAULT_SAGA_TIMEOUTS, SagaTimeoutError, TASK_TIMEOUT_MARGIN_SECONDS } from '../../lambdas/saga/timeouts';

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
  it('includes the action saga', () => {
    expect(files).toContain('action-saga.asl.json');
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

    it('uses only ${...FunctionArn} substitutions', () => {
      const text = readFileSync(join(dir, file), 'utf8');
      const all = [...text.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]);
      expect(all.length).toBeGreaterThan(0);
      expect(all.every((name) => /^[A-Za-z][A-Za-z0-9]*FunctionArn$/.test(name ?? ''))).toBe(true);
      expect(aslPlaceholders(text).length).toBe(new Set(all).size);
    });

    it('passes the task token to every callback task', () => {
      for (const [name, task] of allStates(definition).filter(([, s]) => s.Resource?.endsWith('.waitForTaskToken'))) {
        expect(JSON.stringify(task.Parameters), name).toContain('"$$.Task.Token"');
      }
    });
  });
});

describe('action saga', () => {
  const definition = read('action-saga.asl.json');

  it('re-checks policy, waits for approval with a callback, and writes the receipt', () => {
    expect(definition.StartAt).toBe('EvaluatePolicy');
    expect(definition.States.EvaluatePolicy).toMatchObject({ Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke' });
    expect(definition.States.EvaluatePolicy?.Parameters?.FunctionName).toBe('${SagaFunctionArn}');
    expect(definition.States[APPROVAL_STATE]).toMatchObject({ Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken' });
    expect(definition.States.WriteReceipt?.Parameters?.FunctionName).toBe('${ReceiptsFunctionArn}');
    const types = new Set(Object.values(definition.States).map((s) => s.Type));
    expect([...types]).toEqual(expect.arrayContaining(['Task', 'Choice', 'Succeed', 'Fail']));
  });

  it('ends an approval timeout as expired, a rejection as rejected', () => {
    const catches = definition.States[APPROVAL_STATE]?.Catch ?? [];
    const target = (error: string) => definition.States[catches.find((c) => c.ErrorEquals.includes(error))?.Next ?? ''] as State & { Result?: { status?: string } };
    expect(target('States.Timeout').Result?.status).toBe('expired');
    expect(target('ApprovalRejected').Result?.status).toBe('rejected');
  });

  it('is deployed with the configured timeouts, still valid ASL', () => {
    const config = { ...DEFAULT_SAGA_TIMEOUTS, approvalTimeoutSeconds: 3600, functionTimeoutSeconds: 12, connectorTimeoutSeconds: 45 };
    const { text, timeouts } = renderAsl(config);
    const deployed = JSON.parse(text) as Definition & { TimeoutSeconds: number };
    // The approval's hour, plus the approvals function's own time (it stores the expiry).
    expect(deployed.States[APPROVAL_STATE]?.TimeoutSeconds).toBe(3600 + 12 + TASK_TIMEOUT_MARGIN_SECONDS);
    expect(deployed.TimeoutSeconds).toBe(timeouts.executionSeconds);
    expect(deployed.TimeoutSeconds).toBe(3600 + timeouts.runSeconds);
    // Each Task outlasts the Lambda it invokes: the function's own timeout fires first.
    for (const [name, task] of allStates(deployed).filter(([, s]) => s.Type === 'Task')) {
      const params = task.Parameters ?? {};
      const expected =
        task.Resource?.endsWith('.waitForTaskToken') ? 3600 + 12 + TASK_TIMEOUT_MARGIN_SECONDS
        : 'FunctionName.$' in params ? 45 + TASK_TIMEOUT_MARGIN_SECONDS
        : 12 + TASK_TIMEOUT_MARGIN_SECONDS;
      expect(task.TimeoutSeconds, name).toBe(expected);
    }
    expect(aslValidator(deployed).isValid).toBe(true);
  });

  it('refuses a config whose execution would outlast a Standard workflow, naming the fields', () => {
    const config = { ...DEFAULT_SAGA_TIMEOUTS, approvalTimeoutSeconds: 31_536_000 };
    expect(() => renderAsl(config)).toThrow(SagaTimeoutError);
    expect(() => renderAsl(config)).toThrow(/approvalTimeoutSeconds.*lambda\.timeoutSeconds.*lambda\.connectorTimeoutSeconds/);
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

describe('action saga structure', () => {
  const definition = read('action-saga.asl.json');
  const states = definition.States as Record<string, State & { Default?: string; Choices?: { Next: string }[]; Branches?: Definition[]; Retry?: { ErrorEquals: string[]; JitterStrategy?: string; MaxDelaySeconds?: number; MaxAttempts?: number }[] }>;
  const successors = (name: string): string[] => {
    const s = states[name]!;
    return [s.Next, s.Default, ...(s.Choices ?? []).map((c) => c.Next), ...(s.Catch ?? []).map((c) => c.Next)].filter((n): n is string => typeof n === 'string');
  };

  it('ends every path in WriteReceipt before any terminal state', () => {
    const afterReceipt = new Set(['WriteReceipt', 'RecordReceipt', 'ReportOutcome', 'ActionFailed', 'SagaComplete', 'ReceiptFailed']);
    for (const start of Object.keys(states).filter((n) => !afterReceipt.has(n))) {
      const seen = new Set<string>();
      const queue = [start];
      while (queue.length > 0) {
        const name = queue.pop()!;
        if (seen.has(name) || name === 'WriteReceipt') continue;
        seen.add(name);
        const type = states[name]!.Type;
        expect(['Succeed', 'Fail'].includes(type) ? `${start} reaches ${name} without a receipt` : 'ok').toBe('ok');
        queue.push(...successors(name));
      }
    }
  });

  it('retries a step attempt on retryable named errors with capped, jittered backoff, and compensates on anything else', () => {
    const step = states.ExecuteStep!;
    expect(step.Type).toBe('Parallel');
    const retry = step.Retry![0]!;
    expect(retry.ErrorEquals).toEqual(expect.arrayContaining(['VendorUnavailableError', 'VendorTimeoutError']));
    expect(retry.ErrorEquals).not.toContain('VendorRejectedError');
    expect(retry.ErrorEquals).not.toContain('States.ALL');
    expect(retry.JitterStrategy).toBe('FULL');
    expect(retry.MaxDelaySeconds).toBeGreaterThan(0);
    expect(step.Catch).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'PrepareCompensation' })]);
    // A halt in mode pause holds the step with its own, longer back-off; a stop or an open
    // breaker is not retried at all (compensation follows at once).
    expect(step.Retry![1]).toMatchObject({ ErrorEquals: ['ActionPausedError'], JitterStrategy: 'FULL' });
    const retried = step.Retry!.flatMap((r) => r.ErrorEquals);
    expect(retried).not.toContain('ActionHaltedError');
    expect(retried).not.toContain('CircuitOpenError');
    // One attempt = a fresh grant + one connector call.
    const branch = step.Branches![0]!;
    expect(branch.StartAt).toBe('IssueGrant');
    expect(branch.States.IssueGrant?.Next).toBe('RunStep');
    expect(branch.States.RunStep?.Parameters).toMatchObject({ 'FunctionName.$': '$.grant.functionName' });
  });

  it('runs steps one at a time in plan order and compensates in a loop that never stops early', () => {
    expect(successors('StartSteps')).toEqual(['HasNextStep']);
    expect(states.HasNextStep?.Default).toBe('MarkCompleted');
    expect(states.AdvanceStep?.Next).toBe('HasNextStep');
    expect(JSON.stringify(states.AdvanceStep?.Parameters)).toContain('States.MathAdd($.run.index, 1)');
    expect(states.PrepareCompensation?.Next).toBe('StartCompensation');
    const comp = states.CompensateStep!;
    expect(comp.Retry![0]!.MaxAttempts).toBeGreaterThan(states.ExecuteStep!.Retry![0]!.MaxAttempts!);
    expect(comp.Catch![0]!.Next).toBe('RecordCompensationFailure');
    expect(states.RecordCompensationFailure?.Next).toBe('AdvanceCompensation');
    expect(states.AdvanceCompensation?.Next).toBe('HasNextCompensation');
    expect(states.HasNextCompensation?.Default).toBe('FinishCompensation');
    expect(states.FinishCompensation?.Next).toBe('SettleAction');
  });
});
