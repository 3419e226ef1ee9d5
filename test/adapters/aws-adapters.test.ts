import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { SecretsManagerSecrets } from '../../lambdas/adapters/aws/secrets-manager';
import { StepFunctionsWorkflow } from '../../lambdas/adapters/aws/sfn-workflow';
import { SecretNotFoundError } from '../../lambdas/ports/secrets';

const sm = mockClient(SecretsManagerClient);
const sfn = mockClient(SFNClient);
afterEach(() => {
  sm.reset();
  sfn.reset();
});

describe('SecretsManagerSecrets', () => {
  it('reads a secret once per cache window and again after it', async () => {
    // Prepare
    let clock = 0;
    sm.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'v1' }).resolves({ SecretString: 'v2' });
    const secrets = new SecretsManagerSecrets({ client: new SecretsManagerClient({ region: 'us-east-1' }), cacheMs: 60_000, now: () => clock });
    // Act + Assess
    expect(await secrets.getSecret('airlock/vendor/travel')).toBe('v1');
    clock = 59_000;
    expect(await secrets.getSecret('airlock/vendor/travel')).toBe('v1');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(sm.commandCalls(GetSecretValueCommand)[0]!.args[0].input).toEqual({ SecretId: 'airlock/vendor/travel' });
    clock = 61_000;
    expect(await secrets.getSecret('airlock/vendor/travel')).toBe('v2');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('maps a missing secret to SecretNotFoundError and does not cache failures', async () => {
    sm.on(GetSecretValueCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'nope', $metadata: {} }))
      .rejectsOnce(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }))
      .resolves({ SecretString: 'ok' });
    const secrets = new SecretsManagerSecrets({ client: new SecretsManagerClient({ region: 'us-east-1' }) });
    await expect(secrets.getSecret('x')).rejects.toBeInstanceOf(SecretNotFoundError);
    await expect(secrets.getSecret('x')).rejects.toThrow('throttled');
    await expect(secrets.getSecret('x')).resolves.toBe('ok');
  });

  it('never puts a secret value in an error', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2]) });
    const secrets = new SecretsManagerSecrets({ client: new SecretsManagerClient({ region: 'us-east-1' }) });
    await expect(secrets.getSecret('binary')).rejects.toBeInstanceOf(SecretNotFoundError);
  });
});

describe('StepFunctionsWorkflow', () => {
  const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:airlock-action-saga';

  it('starts one execution named by the action id', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${arn}:act_1` });
    await new StepFunctionsWorkflow({ stateMachineArn: arn, client: new SFNClient({ region: 'us-east-1' }) }).start('act_01J00000000000000000000000', {
      actionId: 'act_01J00000000000000000000000',
    });
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({
      stateMachineArn: arn,
      name: 'act_01J00000000000000000000000',
      input: JSON.stringify({ actionId: 'act_01J00000000000000000000000' }),
    });
  });

  it('starts an unattended action in the Express run, an attended one in the saga, a resumed one in the saga under a fresh name', async () => {
    // Prepare
    const runArn = 'arn:aws:states:us-east-1:123456789012:stateMachine:airlock-action-run';
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'x' });
    const workflow = new StepFunctionsWorkflow({ stateMachineArn: arn, runStateMachineArn: runArn, client: new SFNClient({ region: 'us-east-1' }) });
    const id = 'act_01J00000000000000000000000';
    // Act
    await workflow.start(id, { actionId: id }, 'unattended');
    await workflow.start(id, { actionId: id }, 'attended');
    await workflow.start(id, { actionId: id }, 'resumed');
    await workflow.start(id, { actionId: id });
    // Assess
    const calls = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.stateMachineArn)).toEqual([runArn, arn, arn, arn]);
    expect(calls.map((c) => c.name)).toEqual([id, id, expect.stringMatching(new RegExp(`^${id}-resumed-[0-9a-z]+$`)), id]);
    // A valid execution name: [A-Za-z0-9_-], at most 80.
    expect(calls[2]!.name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
  });

  it('starts an unattended action in the saga when the stack has no Express run', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'x' });
    await new StepFunctionsWorkflow({ stateMachineArn: arn, client: new SFNClient({ region: 'us-east-1' }) }).start('act_x', { actionId: 'act_x' }, 'unattended');
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input.stateMachineArn).toBe(arn);
  });

  it('treats ExecutionAlreadyExists as success (the start is idempotent)', async () => {
    sfn.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    await expect(
      new StepFunctionsWorkflow({ stateMachineArn: arn, client: new SFNClient({ region: 'us-east-1' }) }).start('act_x', { actionId: 'act_x' }),
    ).resolves.toBeUndefined();
  });

  it('lets other failures through', async () => {
    sfn.on(StartExecutionCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    await expect(
      new StepFunctionsWorkflow({ stateMachineArn: arn, client: new SFNClient({ region: 'us-east-1' }) }).start('act_x', { actionId: 'act_x' }),
    ).rejects.toThrow('denied');
  });
});
