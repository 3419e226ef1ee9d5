import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';

/** The file names the engine reads from a policy directory besides the `*.cedar` files. */
export const SCHEMA_FILE = 'schema.cedarschema';
export const CONFIG_FILE = 'config.json';

/** The raw text of a policy directory: what the version hash covers. */
export interface PolicyFiles {
  schema: string;
  config: string;
  /** File name (`travel.cedar`) → text. */
  policies: Record<string, string>;
}

const currencyCode = z.string().regex(/^[A-Z]{3}$/, 'an upper-case ISO 4217 code');

/** config.json: everything about the policy set that is data rather than rules. */
export const PolicyConfigSchema = z
  .object({
    /** The currency policies are written in; every amount is converted to its cents. */
    baseCurrency: currencyCode,
    /** Units of the base currency per unit of each currency. Amounts in other currencies are invalid. */
    rates: z.record(currencyCode, z.number().positive().finite()),
    vendors: z
      .object({
        allowed: z.array(z.string().min(1)).default([]),
        denied: z.array(z.string().min(1)).default([]),
      })
      .strict(),
    /** Per policy file: `enforce` (default for unlisted files) or `shadow` (evaluated, recorded, not applied). */
    files: z.record(z.string().regex(/\.cedar$/), z.object({ mode: z.enum(['enforce', 'shadow']) }).strict()).default({}),
  })
  .strict()
  .refine((c) => c.rates[c.baseCurrency] === 1, { message: 'rates must map baseCurrency to 1', path: ['rates'] });

export type PolicyConfig = z.infer<typeof PolicyConfigSchema>;

/**
 * The shipped policy directory, beside the source. A Lambda bundle does not sit there: its
 * composition root passes the directory the stack names (AIRLOCK_POLICY_DIR).
 */
export function defaultPolicyDir(): string {
  return fileURLToPath(new URL('../../policies/', import.meta.url));
}

/** Reads a policy directory: the schema, config.json and every top-level `*.cedar` file. */
export function readPolicyDir(dir: string = defaultPolicyDir()): PolicyFiles {
  const policies: Record<string, string> = {};
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.cedar')).sort()) {
    policies[name] = readFileSync(join(dir, name), 'utf8');
  }
  return {
    schema: readFileSync(join(dir, SCHEMA_FILE), 'utf8'),
    config: readFileSync(join(dir, CONFIG_FILE), 'utf8'),
    policies,
  };
}

/**
 * SHA-256 over every file, name and text, in a fixed order. config.json is included because
 * caps, vendor lists and shadow flags change decisions as much as a policy does.
 */
export function policySetVersion(files: PolicyFiles): string {
  const hash = createHash('sha256');
  const add = (name: string, text: string) => hash.update(name).update('\0').update(text).update('\0');
  add(SCHEMA_FILE, files.schema);
  add(CONFIG_FILE, files.config);
  for (const name of Object.keys(files.policies).sort()) add(name, files.policies[name] ?? '');
  return hash.digest('hex');
}
