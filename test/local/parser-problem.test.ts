import { describe, expect, it } from 'vitest';
import { ProblemType } from '../../lambdas/shared/problem';
import { MAX_HEADER_BYTES, parserProblem } from '../../local/server';

/** Node's parser errors become problem documents (the raw-socket cases are in test/e2e/hostile-http). */
describe('parserProblem', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431, ProblemType.headersTooLarge],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, ProblemType.requestTimeout],
    ['HPE_HEADERS_TIMEOUT', 408, ProblemType.requestTimeout],
    ['HPE_INVALID_HEADER_TOKEN', 400, ProblemType.malformedRequest],
    ['HPE_INVALID_METHOD', 400, ProblemType.malformedRequest],
    ['HPE_INVALID_CHUNK_SIZE', 400, ProblemType.malformedRequest],
    ['HPE_SOMETHING_NEW', 400, ProblemType.malformedRequest],
    [undefined, 400, ProblemType.malformedRequest],
  ])('maps %s to %i', (code, status, type) => {
    const { problem } = parserProblem(code);
    expect(problem).toMatchObject({ status, type, title: expect.any(String), detail: expect.any(String) });
    if (status === 431) expect(problem.limit).toBe(MAX_HEADER_BYTES);
  });
});
