import { CLIENT_CAPABILITIES_META_KEY, inputRequired, MissingRequiredClientCapabilityError, type CallToolResult, type ServerContext } from '@modelcontextprotocol/server';
import * as z from 'zod';

/**
 * The diagnostic `test_*` tools the official MCP conformance suite calls
 * (`npm run test:mcp-conformance`), served only when the runtime was started for that run
 * (`AIRLOCK_MCP_CONFORMANCE_FIXTURES=1`, set by scripts/mcp-conformance.mjs; never by default,
 * never in the deployed stack: the AWS composition has no way to turn them on).
 *
 * Why a module of their own rather than catalog tools through intake: what the suite checks
 * here is the MCP layer itself — content types a catalog tool never returns (image, audio,
 * embedded resources), progress and log notifications on the call's response stream, a
 * per-request capability check, an input-required round — none of which has a meaning for an
 * action with a policy decision, a saga and a receipt. They are dispatched by the same
 * tools/call handler as every tool (server.ts), after the catalog and Airlock's own tools;
 * `test_error_handling`, the one fixture with an Airlock meaning, does go through intake (see
 * ERROR_TOOL) so the error the suite checks is a real refusal's problem result.
 */

/** Fixture tool names, exactly as the suite calls them. */
export const ConformanceFixtureNames = [
  'test_simple_text',
  'test_image_content',
  'test_audio_content',
  'test_embedded_resource',
  'test_multiple_content_types',
  'test_error_handling',
  'test_tool_with_progress',
  'test_tool_with_logging',
  'test_logging_tool',
  'test_missing_capability',
  'test_streaming_elicitation',
  'test_sampling',
  'test_elicitation',
] as const;

/** One fixture tool's name. */
export type ConformanceFixtureName = (typeof ConformanceFixtureNames)[number];

/**
 * The catalog name `test_error_handling` submits to intake: no catalog tool has it, so intake
 * refuses the action as it refuses any unknown tool, and the answer is that refusal's problem
 * result (`isError: true`, the problem document) — the same path a model's typo takes.
 */
export const ERROR_TOOL = 'conformance.test_error_handling';

const NO_ARGS = { type: 'object', properties: {}, additionalProperties: false } as const;

const DESCRIPTIONS: Record<ConformanceFixtureName, string> = {
  test_simple_text: 'Conformance fixture: returns one text content item.',
  test_image_content: 'Conformance fixture: returns a 1×1 PNG image content item.',
  test_audio_content: 'Conformance fixture: returns a short WAV audio content item.',
  test_embedded_resource: 'Conformance fixture: returns an embedded text resource.',
  test_multiple_content_types: 'Conformance fixture: returns text, image and an embedded resource.',
  test_error_handling: 'Conformance fixture: calls a tool the catalog does not have through intake, whose refusal is an isError result.',
  test_tool_with_progress: 'Conformance fixture: reports progress 0, 50, 100 of 100 to the request\'s progressToken.',
  test_tool_with_logging: 'Conformance fixture: sends three info log messages while it runs.',
  test_logging_tool: 'Conformance fixture: logs only when the request set a log level.',
  test_missing_capability: 'Conformance fixture: needs the client\'s sampling capability and refuses without it (-32021).',
  test_streaming_elicitation: 'Conformance fixture: asks the client for input with an input-required result (never a request on the stream).',
  test_sampling: 'Conformance fixture (2025-11-25): asks the client to sample an LLM for `prompt` (a request on the call\'s stream).',
  test_elicitation: 'Conformance fixture (2025-11-25): asks the client for a username and email (a request on the call\'s stream).',
};

/** The fixture tools as tools/list entries. */
export function conformanceFixtureTools(): Array<{ name: string; title: string; description: string; inputSchema: Record<string, unknown>; annotations: Record<string, unknown> }> {
  return ConformanceFixtureNames.map((name) => ({
    name,
    title: name,
    description: DESCRIPTIONS[name],
    inputSchema: name === 'test_sampling' ? { type: 'object', properties: { prompt: { type: 'string' } }, required: ['prompt'] } : name === 'test_elicitation' ? { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] } : { ...NO_ARGS },
    annotations: { title: name, readOnlyHint: name !== 'test_error_handling', destructiveHint: false, idempotentHint: true, openWorldHint: false },
  }));
}

/** Is `name` a fixture tool? */
export function isConformanceFixture(name: string): name is ConformanceFixtureName {
  return (ConformanceFixtureNames as readonly string[]).includes(name);
}

// A 1×1 red PNG and a 1-sample 8 kHz mono 8-bit WAV: the smallest valid files of each type.
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV_1_SAMPLE = Buffer.concat([
  Buffer.from('RIFF'),
  Buffer.from([37, 0, 0, 0]),
  Buffer.from('WAVEfmt '),
  Buffer.from([16, 0, 0, 0, 1, 0, 1, 0, 0x40, 0x1f, 0, 0, 0x40, 0x1f, 0, 0, 1, 0, 8, 0]),
  Buffer.from('data'),
  Buffer.from([1, 0, 0, 0, 128]),
]).toString('base64');

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The suite's pacing between notifications (~50 ms), so they arrive as separate messages. */
const STEP_MS = 50;

/** What a fixture needs besides its request context: intake, for test_error_handling. */
export interface FixtureCallDeps {
  /** Runs `catalogName` through the same path as a catalog tool's tools/call. */
  callCatalog(catalogName: string, args: Record<string, unknown>): Promise<CallToolResult>;
  /** The client's capabilities for this request (the 2026-07-28 envelope, or initialize's). */
  clientCapabilities: Record<string, unknown> | undefined;
}

/** Runs fixture `name` for this request. */
export async function callConformanceFixture(name: ConformanceFixtureName, ctx: ServerContext, deps: FixtureCallDeps): Promise<CallToolResult> {
  const text = (value: string) => ({ type: 'text' as const, text: value });
  switch (name) {
    case 'test_simple_text':
      return { content: [text('This is a simple text response for testing.')] };
    case 'test_image_content':
      return { content: [{ type: 'image', data: PNG_1X1, mimeType: 'image/png' }] };
    case 'test_audio_content':
      return { content: [{ type: 'audio', data: WAV_1_SAMPLE, mimeType: 'audio/wav' }] };
    case 'test_embedded_resource':
      return { content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }] };
    case 'test_multiple_content_types':
      return {
        content: [
          text('Multiple content types test:'),
          { type: 'image', data: PNG_1X1, mimeType: 'image/png' },
          { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) } },
        ],
      };
    case 'test_error_handling':
      return deps.callCatalog(ERROR_TOOL, {});
    case 'test_tool_with_progress': {
      const token = ctx.mcpReq._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (token !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
        if (progress < 100) await pause(STEP_MS);
      }
      return { content: [text('Progress reported: 0, 50 and 100 of 100.')] };
    }
    case 'test_tool_with_logging':
    case 'test_logging_tool': {
      // ctx.mcpReq.log applies the era's filter: the request's logLevel (2026-07-28; none set, nothing sent) or logging/setLevel.
      const messages = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];
      for (const [i, message] of messages.entries()) {
        if (i > 0) await pause(STEP_MS);
        await ctx.mcpReq.log('info', message, 'conformance');
      }
      return { content: [text('Logged three messages at info level (where the request\'s log level allows).')] };
    }
    case 'test_missing_capability': {
      const sampling = deps.clientCapabilities?.sampling;
      if (typeof sampling !== 'object' || sampling === null) {
        throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { sampling: {} } }, 'Missing required client capability: this tool needs sampling, which the request did not declare.');
      }
      return { content: [text('The client declared sampling.')] };
    }
    case 'test_sampling':
    case 'test_elicitation':
      // A push needs a streamed answer and the client's next POST routed back to this call: the
      // local runtime serves these before they reach this buffered path (local/mcp-push-fixtures.ts).
      return { isError: true, content: [text(`${name} pushes a request to the client mid-call, which only the local runtime's streaming path serves (2025-11-25 clients).`)] };
    case 'test_streaming_elicitation': {
      const answer = ctx.mcpReq.inputResponses?.['conformance-name'];
      if (answer !== undefined) return { content: [text(`Input received: ${JSON.stringify(answer).slice(0, 200)}`)] };
      return inputRequired({
        inputRequests: { 'conformance-name': inputRequired.elicit({ message: 'Conformance fixture: what is your name?', requestedSchema: z.object({ name: z.string() }) }) },
      }) as unknown as CallToolResult;
    }
  }
}

/** The per-request client capabilities of a 2026-07-28 envelope. */
export function envelopeCapabilities(envelope: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const caps = envelope?.[CLIENT_CAPABILITIES_META_KEY];
  return typeof caps === 'object' && caps !== null ? (caps as Record<string, unknown>) : undefined;
}
