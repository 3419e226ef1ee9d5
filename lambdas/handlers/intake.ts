import { toolCatalog } from '../core/catalog';
import { httpApi } from './http';

/** The intake function: the agent-facing front door. */
export const handler = httpApi({
  'GET /healthz': { auth: false, handle: async () => ({ status: 200, body: { status: 'ok' } }) },
  'GET /v1/tools': { auth: true, handle: async () => ({ status: 200, body: { tools: toolCatalog() } }) },
});
