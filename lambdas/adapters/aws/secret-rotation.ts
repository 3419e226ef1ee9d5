import {
  DescribeSecretCommand,
  type DescribeSecretCommandOutput,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import * as z from 'zod';
import { rotateGrantKeySet, testPendingValue } from '../../keys/rotation';
import type { Logger } from '../../shared/logger';

/**
 * Secrets Manager's four-step rotation protocol (createSecret, setSecret, testSecret,
 * finishSecret) for the grant-signing key. The key set logic is in keys/rotation.ts; this
 * adapter only moves versions and stages. Values are never logged: only version ids and key
 * ids (public thumbprints).
 */

/** What a rotation step needs: the Secrets Manager client, a clock and a logger. */
export interface SecretRotationDeps {
  client: SecretsManagerClient;
  now: () => Date;
  logger: Logger;
}

export const STAGE_CURRENT = 'AWSCURRENT';
export const STAGE_PENDING = 'AWSPENDING';

/** The event Secrets Manager sends for each step; untrusted until parsed. */
export const RotationEventSchema = z
  .object({
    SecretId: z.string().min(1),
    ClientRequestToken: z.string().min(1),
    Step: z.enum(['createSecret', 'setSecret', 'testSecret', 'finishSecret']),
  })
  // Newer events also carry RotationToken; it is not needed here.
  .passthrough();
export type RotationEvent = z.infer<typeof RotationEventSchema>;

/** The event or the secret's version stages do not allow this step; Secrets Manager retries the rotation later. */
export class RotationStateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RotationStateError';
  }
}

const isNotFound = (error: unknown) => error instanceof Error && error.name === 'ResourceNotFoundException';

async function readValue(client: SecretsManagerClient, secretId: string, select: { VersionStage: string; VersionId?: string }): Promise<string> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId, ...select }));
  if (typeof out.SecretString !== 'string') throw new RotationStateError(`Secret version ${select.VersionId ?? select.VersionStage} has no string value`);
  return out.SecretString;
}

/** The version currently staged AWSCURRENT. */
function currentVersion(metadata: DescribeSecretCommandOutput): string | undefined {
  return Object.entries(metadata.VersionIdsToStages ?? {}).find(([, stages]) => stages.includes(STAGE_CURRENT))?.[0];
}

/**
 * Runs one rotation step. Every step first checks that rotation is enabled and that the
 * token names a version staged AWSPENDING (or already AWSCURRENT: a step re-sent after the
 * rotation finished is a no-op), as Secrets Manager's rotation template does.
 */
export async function rotateGrantKeySecret(deps: SecretRotationDeps, input: unknown): Promise<void> {
  const { client, now } = deps;
  const parsed = RotationEventSchema.safeParse(input);
  if (!parsed.success) throw new RotationStateError(`Invalid rotation event: ${parsed.error.issues.map((i) => i.path.join('.') || i.message).join(', ')}`);
  const { SecretId: secretId, ClientRequestToken: versionId, Step: step } = parsed.data;
  // `arn` and `versionId`, not `secretId` and `token`: the logger masks keys that look secret,
  // and neither value is one.
  const log = deps.logger.child({ rotation: step, arn: secretId, versionId });

  const metadata = await client.send(new DescribeSecretCommand({ SecretId: secretId }));
  if (!metadata.RotationEnabled) throw new RotationStateError(`Secret ${secretId} is not enabled for rotation`);
  const stages = metadata.VersionIdsToStages?.[versionId];
  if (!stages) throw new RotationStateError(`Version ${versionId} has no stage for rotation of secret ${secretId}`);
  if (stages.includes(STAGE_CURRENT)) {
    log.info('version already AWSCURRENT; nothing to do');
    return;
  }
  if (!stages.includes(STAGE_PENDING)) throw new RotationStateError(`Version ${versionId} is not staged AWSPENDING for rotation of secret ${secretId}`);

  switch (step) {
    case 'createSecret': {
      const current = await readValue(client, secretId, { VersionStage: STAGE_CURRENT });
      try {
        await readValue(client, secretId, { VersionStage: STAGE_PENDING, VersionId: versionId });
        // A retried createSecret: the pending value exists; generating another would change it.
        log.info('pending value already exists');
        return;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      const { value, summary } = await rotateGrantKeySet(current, { now: now() });
      await client.send(
        new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: versionId, SecretString: value, VersionStages: [STAGE_PENDING] }),
      );
      if (summary.bootstrapped) log.warn('current value was not a grant key set (deploy-time placeholder?); started a fresh key set');
      log.info('pending grant key set created', { signerKid: summary.signer, nextKid: summary.next, keptKids: summary.kept, droppedKids: summary.dropped });
      return;
    }
    case 'setSecret':
      // Nothing outside Secrets Manager holds this key: functions read it from the secret.
      log.info('no external system to update');
      return;
    case 'testSecret': {
      const pending = await readValue(client, secretId, { VersionStage: STAGE_PENDING, VersionId: versionId });
      const current = await readValue(client, secretId, { VersionStage: STAGE_CURRENT });
      await testPendingValue(pending, current);
      log.info('pending grant key set passed its checks');
      return;
    }
    case 'finishSecret': {
      const previous = currentVersion(metadata);
      await client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: secretId,
          VersionStage: STAGE_CURRENT,
          MoveToVersionId: versionId,
          ...(previous ? { RemoveFromVersionId: previous } : {}),
        }),
      );
      // A leftover AWSPENDING label would make the next rotation think one is still running.
      await client.send(new UpdateSecretVersionStageCommand({ SecretId: secretId, VersionStage: STAGE_PENDING, RemoveFromVersionId: versionId }));
      log.info('rotation finished', { previousVersionId: previous ?? null });
      return;
    }
  }
}
