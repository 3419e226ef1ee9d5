/** The audit vault's core: receipts, redaction, digests, verification. */
export * from './schema';
export * from './redact';
export * from './build';
export * from './signing';
export * from './vault';
export * from './verify';
export * from './timeline';
