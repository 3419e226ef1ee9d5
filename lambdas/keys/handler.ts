import { rotateGrantKeySecret, type SecretRotationDeps } from '../adapters/aws/secret-rotation';
import { keysDeps } from '../composition/aws';
import type { Lazy } from '../composition/deps';
import { taskHandler } from '../middleware/task';

/**
 * The rotation function of the grant-signing key, invoked by Secrets Manager for each step
 * of its four-step protocol (adapters/aws/secret-rotation.ts).
 */
export function createKeysHandler(deps: Lazy<SecretRotationDeps>) {
  return taskHandler(async (event: unknown) => rotateGrantKeySecret(await deps(), event));
}

/** Lambda entry point. */
export const handler = createKeysHandler(keysDeps);
