/**
 * Tool names every function-calling API accepts. Airlock's own names are `<connector>.<tool>`
 * (`travel.hold_seat`), but MCP clients, OpenAI, Anthropic and Gemini want
 * `^[a-zA-Z0-9_-]{1,64}$`. Connector and tool names use only `[a-z0-9_]`, so swapping the
 * one dot for a hyphen (`travel-hold_seat`) is a bijection: each safe name maps back to
 * exactly one catalog name.
 */

/** The pattern OpenAI, Anthropic, Gemini and MCP clients accept for a tool (function) name. */
export const SAFE_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** Airlock's catalog name shape (`<connector>.<tool>`), as the envelope validates it. */
const CATALOG_NAME = /^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$/;
const SAFE_CATALOG_NAME = /^([a-z][a-z0-9_]*)-([a-z][a-z0-9_]*)$/;

/** `travel.hold_seat` → `travel-hold_seat`. Throws for a name that is not a catalog name. */
export function safeToolName(catalogName: string): string {
  const m = CATALOG_NAME.exec(catalogName);
  if (!m) throw new RangeError(`not a catalog tool name: ${catalogName.slice(0, 80)}`);
  const safe = `${m[1]}-${m[2]}`;
  if (!SAFE_TOOL_NAME.test(safe)) throw new RangeError(`tool name too long for function-calling APIs: ${catalogName.slice(0, 80)}`);
  return safe;
}

/** `travel-hold_seat` → `travel.hold_seat`; undefined when `name` is not a safe catalog name. */
export function catalogToolName(name: string): string | undefined {
  const m = SAFE_CATALOG_NAME.exec(name);
  return m ? `${m[1]}.${m[2]}` : undefined;
}

/** A tool name as an envelope may carry it (either form), in the catalog form. */
export function canonicalToolName(name: string): string {
  return catalogToolName(name) ?? name;
}
