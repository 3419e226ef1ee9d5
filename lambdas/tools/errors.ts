/**
 * Named vendor errors. In Step Functions the error name is the `ErrorEquals` contract, so
 * these names never change. `retryable` tells the saga whether a plain retry is safe.
 */
export abstract class VendorError extends Error {
  abstract readonly retryable: boolean;
  /** Whether the operation may have taken effect at the vendor (reconcile before retrying). */
  readonly uncertain: boolean = false;
  readonly vendorStatus: number | undefined;
  readonly vendorCode: string | undefined;

  constructor(message: string, options?: { cause?: unknown; vendorStatus?: number; vendorCode?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.vendorStatus = options?.vendorStatus;
    this.vendorCode = options?.vendorCode;
  }
}

/** The vendor could not be reached or answered 5xx/429: nothing happened, retry with backoff. */
export class VendorUnavailableError extends VendorError {
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown; vendorStatus?: number; vendorCode?: string }) {
    super(message, options);
    this.name = 'VendorUnavailableError';
  }
}

/** The vendor refused the request on its merits (4xx): retrying cannot help. */
export class VendorRejectedError extends VendorError {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown; vendorStatus?: number; vendorCode?: string }) {
    super(message, options);
    this.name = 'VendorRejectedError';
  }
}

/**
 * The call outlived its deadline: the vendor may or may not have acted. Retryable only after
 * the connector reconciled (looked the operation up by its client reference).
 */
export class VendorTimeoutError extends VendorError {
  readonly retryable = true;
  override readonly uncertain = true;
  constructor(message: string, options?: { cause?: unknown; vendorStatus?: number; vendorCode?: string }) {
    super(message, options);
    this.name = 'VendorTimeoutError';
  }
}

/** The vendor refused our credential (401/403): a configuration fault, never retried. */
export class VendorAuthError extends VendorError {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown; vendorStatus?: number; vendorCode?: string }) {
    super(message, options);
    this.name = 'VendorAuthError';
  }
}
