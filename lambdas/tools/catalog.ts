import { z } from 'zod';
import { allTools, compensationOf, type RegisteredTool } from './registry';
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

function entry(t: RegisteredTool): CatalogEntry {
  const comp = compensationOf(t);
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

let cached: CatalogEntry[] | undefined;

/** The catalog, built once per process (schemas do not change at run time). */
export function toolCatalog(): CatalogEntry[] {
  cached ??= allTools().map(entry);
  return cached;
}
