/**
 * What domain code logs through: a structured logger with child loggers. The one
 * implementation is Powertools Logger (lambdas/middleware/powertools.ts); domain modules know
 * only this interface, so they never import a Lambda library.
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const secretKey = /(authorization|token|secret|password|credential|api[-_]?key|grant|private|signature|cookie)/i;
const MAX_DEPTH = 6;

/**
 * Replaces values under secret-looking keys with a marker; bounded in depth and size. Every
 * log line goes through it, so a careless `logger.info('x', { headers })` cannot leak a
 * bearer token.
 */
export function maskSecrets(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'string' && value.length > 2048 ? `${value.slice(0, 2048)}…` : value;
  }
  if (depth >= MAX_DEPTH) return '[depth]';
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => maskSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = secretKey.test(k) ? '[redacted]' : maskSecrets(v, depth + 1);
  }
  return out;
}
