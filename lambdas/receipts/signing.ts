import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../shared/canonical-json';
import type { PublicKeyDoc } from './schema';

/**
 * Digest signing with Ed25519. The secret `airlock/digest-signing-key` holds any string of at
 * least 32 characters (Secrets Manager generates one at deploy time; the local runtime
 * writes 32 random bytes); the Ed25519 private key is the SHA-256 of a fixed label and
 * that string. An Ed25519 private key is just a 32-byte seed, so no key format has to be
 * produced by Secrets Manager, and AWS and local mode sign the same way.
 */

/** PKCS#8 DER prefix of an Ed25519 private key whose last 32 bytes are the seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SPKI DER prefix of an Ed25519 public key whose last 32 bytes are the key (RFC 8410). */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The signing secret is too short to seed a key. */
export class InvalidSigningKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidSigningKeyError';
  }
}

export interface DigestSigner {
  keyId: string;
  publicKey: PublicKeyDoc;
  sign(data: Uint8Array): string;
}

/** RFC 7638 thumbprint of an Ed25519 public key (`x` base64url): the key id. */
export function ed25519KeyId(x: string): string {
  return createHash('sha256').update(canonicalJson({ crv: 'Ed25519', kty: 'OKP', x })).digest('base64url');
}

/** The signer derived from the digest-signing secret. */
export function digestSignerFromSecret(secret: string): DigestSigner {
  if (secret.length < 32) throw new InvalidSigningKeyError('The digest-signing secret must hold at least 32 characters');
  const seed = createHash('sha256').update('airlock-digest-signing-key/v1\n').update(secret, 'utf8').digest();
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const x = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length).toString('base64url');
  const keyId = ed25519KeyId(x);
  return {
    keyId,
    publicKey: { kind: 'airlock.digest-key', algorithm: 'Ed25519', keyId, publicKey: x },
    sign: (data) => sign(null, data, privateKey).toString('base64'),
  };
}

/** A verifying key from a published key document (throws on a malformed key). */
export function publicKeyFromDoc(doc: PublicKeyDoc): KeyObject {
  const raw = Buffer.from(doc.publicKey, 'base64url');
  if (raw.length !== 32) throw new InvalidSigningKeyError(`Key ${doc.keyId} is not a 32-byte Ed25519 key`);
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Checks an Ed25519 signature (base64); false on any malformed input. */
export function verifySignature(key: KeyObject, data: Uint8Array, signature: string): boolean {
  try {
    const sig = Buffer.from(signature, 'base64');
    if (sig.length !== 64 || sig.toString('base64') !== signature) return false;
    return verify(null, data, key, sig);
  } catch {
    return false;
  }
}
