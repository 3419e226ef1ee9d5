import * as z from 'zod';
import { defineConnector, defineTool } from '../sdk';

/** A built-in connector with one read tool: proves the catalog and the plumbing end to end. */
interface EchoClient {
  say(message: string): { message: string; length: number };
}

const say = defineTool({
  name: 'say',
  description: 'Returns the message it is given. No side effects; useful to test connectivity and policy.',
  tier: 'read',
  input: () => z.object({ message: z.string().min(1).max(1000) }).strict(),
  output: () => z.object({ message: z.string(), length: z.number().int() }),
  async execute(client: EchoClient, input) {
    return client.say(input.message);
  },
});

export const echo = defineConnector<EchoClient>({
  name: 'echo',
  description: 'Echoes its input. Built in; talks to no vendor.',
  vendor: {
    name: 'Airlock',
    // Built in: there is no vendor to call, so the base URL is a marker the client ignores.
    defaultBaseUrl: 'builtin:echo',
    createClient: () => ({ say: (message: string) => ({ message, length: [...message].length }) }),
  },
  tools: [say],
});
