import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  type GetSecretValueCommandInput,
  PutSecretValueCommand,
  type PutSecretValueCommandInput,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  type UpdateSecretVersionStageCommandInput,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GrantKeyRotationError, parseGrantKeySet, rotateGrantKeySet } from '../../lambdas/keys/rotation';
import { rotateGrantKeySecret, RotationStateError } from '../../lambdas/adapters/aws/secret-rotation';
import { logger } from '../../lambdas/middleware/powertools';

/** One rotation step, as the rotation function runs it (the client is mocked below). */
const rotate = (event: unknown) => rotateGrantKeySecret({ client: new SecretsManagerClient({}), now: () => new Date(), logger }, event);
import { generateGrantSigningKey } from '../../local/provision-secrets';

const sm = mockClient(SecretsManagerClient);
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:airlock/grant-signing-key-AbCdEf';
const OLD = 'v-old';
const TOKEN = 'v-new';

/**
 * A small stateful Secrets Manager behind aws-sdk-client-mock: versions with values and
 * stages, so the four steps run against the state they would see in AWS.
 */
class FakeSecret {
  rotationEnabled = true;
  versions = new Map<string, { value?: string; stages: string[] }>();

  constructor() {
    sm.on(DescribeSecretCommand).callsFake(() => ({
      ARN,
      RotationEnabled: this.rotationEnabled,
      VersionIdsToStages: Object.fromEntries([...this.versions].map(([id, v]) => [id, [...v.stages]])),
    }));
    sm.on(GetSecretValueCommand).callsFake((input: GetSecretValueCommandInput) => {
      const found = [...this.versions].find(
        ([id, v]) => (input.VersionId === undefined || id === input.VersionId) && (input.VersionStage === undefined || v.stages.includes(input.VersionStage)),
      );
      if (!found || found[1].value === undefined) {
        throw new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret value", $metadata: {} });
      }
      return { ARN, VersionId: found[0], SecretString: found[1].value };
    });
    sm.on(PutSecretValueCommand).callsFake((input: PutSecretValueCommandInput) => {
      const version = this.versions.get(input.ClientRequestToken!) ?? { stages: [] };
      version.value = input.SecretString;
      for (const stage of input.VersionStages ?? []) this.moveStage(stage, input.ClientRequestToken!);
      this.versions.set(input.ClientRequestToken!, version);
      return { ARN, VersionId: input.ClientRequestToken };
    });
    sm.on(UpdateSecretVersionStageCommand).callsFake((input: UpdateSecretVersionStageCommandInput) => {
      const stage = input.VersionStage!;
      if (input.RemoveFromVersionId) {
        const from = this.versions.get(input.RemoveFromVersionId)!;
        if (!from.stages.includes(stage)) throw new Error(`${stage} is not on ${input.RemoveFromVersionId}`);
        from.stages = from.stages.filter((s) => s !== stage);
      }
      if (input.MoveToVersionId) {
        // Secrets Manager refuses to move a stage off a version that was not named.
        const holder = [...this.versions].find(([id, v]) => v.stages.includes(stage) && id !== input.MoveToVersionId);
        if (holder) throw new Error(`${stage} is still on ${holder[0]}`);
        this.versions.get(input.MoveToVersionId)!.stages.push(stage);
      }
      return { ARN };
    });
  }

  private moveStage(stage: string, to: string) {
    for (const v of this.versions.values()) v.stages = v.stages.filter((s) => s !== stage);
    this.versions.get(to)?.stages.push(stage);
  }

  /** What RotateSecret does before calling createSecret: an empty version staged AWSPENDING. */
  startRotation(token = TOKEN) {
    this.versions.set(token, { stages: ['AWSPENDING'] });
  }

  stagesOf(id: string) {
    return this.versions.get(id)?.stages ?? [];
  }
}

let secret: FakeSecret;
/** What the function wrote to stdout (the logger's sink), kept out of the test output. */
let lines: string[];
let currentValue: string;
const event = (Step: string, ClientRequestToken = TOKEN) => ({ SecretId: ARN, ClientRequestToken, Step });

beforeEach(async () => {
  // Prepare: a steady-state key set as AWSCURRENT, and a rotation started.
  currentValue = (await rotateGrantKeySet(await generateGrantSigningKey())).value;
  lines = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
  secret = new FakeSecret();
  secret.versions.set(OLD, { value: currentValue, stages: ['AWSCURRENT'] });
  secret.startRotation();
});
afterEach(() => {
  sm.reset();
  vi.restoreAllMocks();
});

describe('rotate-grant-key: the four steps', () => {
  it('runs a full rotation: pending created, tested, promoted; the old version loses AWSCURRENT', async () => {
    // Act
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) await rotate(event(step));
    // Assess
    expect(secret.stagesOf(TOKEN)).toEqual(['AWSCURRENT']);
    expect(secret.stagesOf(OLD)).toEqual([]);
    const next = parseGrantKeySet(secret.versions.get(TOKEN)!.value!)!;
    expect(next.signer.kid).toBe(parseGrantKeySet(currentValue)!.next!.kid);
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(1);
    expect(sm.commandCalls(PutSecretValueCommand)[0]!.args[0].input).toMatchObject({
      SecretId: ARN,
      ClientRequestToken: TOKEN,
      VersionStages: ['AWSPENDING'],
    });
    expect(sm.commandCalls(UpdateSecretVersionStageCommand).map((c) => c.args[0].input)).toEqual([
      { SecretId: ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: TOKEN, RemoveFromVersionId: OLD },
      { SecretId: ARN, VersionStage: 'AWSPENDING', RemoveFromVersionId: TOKEN },
    ]);
    // Never a key in the logs: no private or public key member of any key, old or new.
    const logged = lines.join('');
    expect(logged).toContain('rotation finished');
    for (const key of [next.signer, next.next!, ...next.previous]) {
      expect(logged).not.toContain(key.d);
      expect(logged).not.toContain(key.x);
    }
  });

  it('createSecret is idempotent: an existing AWSPENDING value is left as it is', async () => {
    await rotate(event('createSecret'));
    const first = secret.versions.get(TOKEN)!.value;
    // Act: Secrets Manager retries the step.
    await rotate(event('createSecret'));
    // Assess
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(1);
    expect(secret.versions.get(TOKEN)!.value).toBe(first);
    expect(sm.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input)).toContainEqual({
      SecretId: ARN,
      VersionStage: 'AWSPENDING',
      VersionId: TOKEN,
    });
  });

  it('createSecret does not swallow errors other than ResourceNotFound', async () => {
    sm.on(GetSecretValueCommand, { SecretId: ARN, VersionStage: 'AWSPENDING', VersionId: TOKEN }).rejects(
      Object.assign(new Error('throttled'), { name: 'ThrottlingException' }),
    );
    await expect(rotate(event('createSecret'))).rejects.toThrow('throttled');
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it('setSecret changes nothing', async () => {
    await rotate(event('createSecret'));
    sm.resetHistory();
    await rotate(event('setSecret'));
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(sm.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  it('testSecret fails on a pending value that would break in-flight grants', async () => {
    // A pending value with keys unrelated to the current set (as if written by hand).
    secret.versions.get(TOKEN)!.value = (await rotateGrantKeySet('placeholder')).value;
    await expect(rotate(event('testSecret'))).rejects.toThrow(GrantKeyRotationError);
    secret.versions.get(TOKEN)!.value = '{"keys":[]}';
    await expect(rotate(event('testSecret'))).rejects.toThrow(GrantKeyRotationError);
  });

  it('finishSecret moves AWSCURRENT from the old version, and is a no-op once done', async () => {
    await rotate(event('createSecret'));
    await rotate(event('finishSecret'));
    expect(secret.stagesOf(TOKEN)).toEqual(['AWSCURRENT']);
    sm.resetHistory();
    // Act: the step re-sent after it succeeded.
    await rotate(event('finishSecret'));
    expect(sm.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
    expect(secret.stagesOf(TOKEN)).toEqual(['AWSCURRENT']);
  });

  it('bootstraps the deploy-time placeholder into a key set', async () => {
    secret.versions.get(OLD)!.value = 'RandomPlaceholderFromCloudFormation0123456789';
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) await rotate(event(step));
    const set = parseGrantKeySet(secret.versions.get(TOKEN)!.value!);
    expect(set?.next).toBeDefined();
    expect(secret.stagesOf(TOKEN)).toEqual(['AWSCURRENT']);
  });
});

describe('rotate-grant-key: staging checks', () => {
  it('refuses a secret without rotation enabled', async () => {
    secret.rotationEnabled = false;
    await expect(rotate(event('createSecret'))).rejects.toThrow(RotationStateError);
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it('refuses a token that names no version', async () => {
    await expect(rotate(event('createSecret', 'v-unknown'))).rejects.toThrow(/has no stage/);
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it('refuses a version that is not staged AWSPENDING', async () => {
    secret.versions.set('v-stray', { value: currentValue, stages: ['AWSPREVIOUS'] });
    await expect(rotate(event('finishSecret', 'v-stray'))).rejects.toThrow(/not staged AWSPENDING/);
    expect(sm.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  it('does nothing for a version that is already AWSCURRENT', async () => {
    await rotate(event('createSecret', OLD));
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('refuses a malformed event', async () => {
    await expect(rotate({ SecretId: ARN, ClientRequestToken: TOKEN, Step: 'dropSecret' })).rejects.toThrow(RotationStateError);
    await expect(rotate({ Step: 'createSecret' })).rejects.toThrow(RotationStateError);
    expect(sm.commandCalls(DescribeSecretCommand)).toHaveLength(0);
  });
});
