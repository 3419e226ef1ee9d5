/**
 * Node 20 lacks `Promise.withResolvers` (added in Node 22), which aws-local-stepfunctions 3
 * calls. Imported first by every local entry point; a no-op on newer runtimes.
 */
const P = Promise as unknown as { withResolvers?: unknown };
if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
export {};

// The SDK warns once per process that its 2027 releases need Node 22; this machine runs
// Node 20 on purpose (the Lambda runtime is newer), so the warning is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
