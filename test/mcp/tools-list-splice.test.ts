import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { spliceToolsList } from '../../lambdas/mcp/http';

/**
 * The cached tools/list splice (mcp/http.ts): the SDK answers an empty `tools` array and the
 * edge puts the serialized catalog in its place. Whatever the rest of the message holds, the
 * result is that message with the tools, and nothing else is touched.
 */
const json = fc.jsonValue();
const tools = fc.array(fc.record({ name: fc.string(), inputSchema: fc.dictionary(fc.string(), json) }), { maxLength: 5 });

describe('spliceToolsList', () => {
  it('a JSON answer becomes the same message with the cached tools', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.string()), fc.dictionary(fc.string().filter((k) => k !== 'tools' && k !== '__proto__'), json), tools, (id, rest, list) => {
        const message = { jsonrpc: '2.0', id, result: { ...rest, tools: [] } };
        const out = JSON.parse(spliceToolsList(JSON.stringify(message), JSON.stringify(list)));
        expect(out).toEqual(JSON.parse(JSON.stringify({ ...message, result: { ...message.result, tools: list } })));
      }),
    );
  });

  it('an SSE answer gets the tools in its data line; other lines stay as they were', () => {
    const message = { jsonrpc: '2.0', id: 3, result: { tools: [], resultType: 'complete' } };
    const body = `event: message\nid: 1\ndata: ${JSON.stringify(message)}\n\n`;
    const out = spliceToolsList(body, '[{"name":"a"}]');
    const lines = out.split('\n');
    expect(lines.slice(0, 2)).toEqual(['event: message', 'id: 1']);
    expect(JSON.parse(lines[2]!.slice(5))).toEqual({ ...message, result: { ...message.result, tools: [{ name: 'a' }] } });
  });

  it('errors, non-empty lists and anything unparsable pass unchanged', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const error = JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: text } });
        expect(spliceToolsList(error, '[1]')).toBe(error);
        const full = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: text }] } });
        expect(spliceToolsList(full, '[1]')).toBe(full);
        if (!text.startsWith('data:') && !text.includes('\ndata:')) expect(spliceToolsList(text, '[1]')).toBe(text);
      }),
    );
  });
});
