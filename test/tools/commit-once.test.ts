import { describe, expect, it } from 'vitest';
import { VendorRejectedError, VendorTimeoutError, VendorUnavailableError } from '../../lambdas/tools/errors';
import { commitOnce } from '../../lambdas/tools/vendor-http';

/** commitOnce: a lost answer is looked up by client reference before the call is sent again. */

const quiet = { logger: { info: () => undefined, warn: () => undefined } } as unknown as Parameters<typeof commitOnce>[0];

function scripted(answers: (string | Error)[]) {
  let i = 0;
  return async () => {
    const next = answers[i++];
    if (next instanceof Error) throw next;
    return next;
  };
}

describe('commitOnce', () => {
  it('returns what the lookup finds after a lost answer, without sending again', async () => {
    const send = scripted([new VendorTimeoutError('lost'), 'second send']);
    await expect(commitOnce(quiet, { send, lookup: async () => 'found' })).resolves.toBe('found');
  });

  it('a 5xx to the retry after a lost answer tells nothing of the first request: the outcome stays unknown', async () => {
    // The first request may still land after the lookup looked; only a timeout keeps the step in doubt.
    const send = scripted([new VendorTimeoutError('lost'), new VendorUnavailableError('503')]);
    const failure = await commitOnce(quiet, { send, lookup: async () => undefined }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(VendorTimeoutError);
    expect((failure as Error).message).toContain('outcome still unknown');
    expect((failure as Error).cause).toBeInstanceOf(VendorUnavailableError);
  });

  it('a refusal of the retry is the vendor\'s answer for the key, and stays a refusal', async () => {
    const send = scripted([new VendorTimeoutError('lost'), new VendorRejectedError('no seats')]);
    await expect(commitOnce(quiet, { send, lookup: async () => undefined })).rejects.toBeInstanceOf(VendorRejectedError);
  });

  it('a lookup that fails leaves the outcome unknown', async () => {
    const send = scripted([new VendorTimeoutError('lost')]);
    await expect(commitOnce(quiet, { send, lookup: async () => Promise.reject(new VendorUnavailableError('503')) })).rejects.toBeInstanceOf(VendorTimeoutError);
  });
});
