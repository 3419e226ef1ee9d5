import * as z from 'zod';
import type { RegisteredTool, ToolRegistry } from '../ports/tools';
import type { Tier } from './sdk';

/** One entry of the tool catalog an agent reads to plan its calls. */
export interface CatalogEntry {
  name: string;
  connector: string;
  description: string;
  tier: Tier;
  inputSchema: Record<string, unknown>;
  outputSchema: Record<string, unknown>;
  compensation: string | null;
  pii: { input: string[]; output: string[] };
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  return z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Record<string, unknown>;
}

function entry(registry: ToolRegistry, t: RegisteredTool): CatalogEntry {
  const comp = registry.compensationOf(t);
  return {
    name: t.fullName,
    connector: t.connector.name,
    description: t.tool.description,
    tier: t.tool.tier,
    inputSchema: jsonSchema(t.tool.input, 'input'),
    outputSchema: jsonSchema(t.tool.output, 'output'),
    compensation: comp ? comp.fullName : null,
    pii: { input: t.tool.pii?.input ?? [], output: t.tool.pii?.output ?? [] },
  };
}

const cache = new WeakMap<ToolRegistry, CatalogEntry[]>();

/** The catalog of a registry, built once per process (schemas do not change at run time). */
export function toolCatalog(registry: ToolRegistry): CatalogEntry[] {
  let catalog = cache.get(registry);
  if (!catalog) {
    catalog = registry.all().map((t) => entry(registry, t));
    cache.set(registry, catalog);
  }
  return catalog;
}
