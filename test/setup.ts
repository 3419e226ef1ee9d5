// aws-local-stepfunctions 3 calls Promise.withResolvers, which Node 20 lacks.
import '../lambdas/local/polyfills';
import { afterAll } from 'vitest';
import { deletePendingTestTables } from './helpers/dynamo';

// Tables a test file made on an external DynamoDB endpoint outlive it unless deleted.
afterAll(deletePendingTestTables);
