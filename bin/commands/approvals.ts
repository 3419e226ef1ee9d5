import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadOrCreateIssuer } from '../../local/dev-issuer';
import { resolveStateDir } from '../../local/state-dir';
import { ApprovalIdPattern } from '../../lambdas/shared/ids';

/** `airlock approvals`: list, show, approve and reject approvals from a terminal, over the HTTP API. */
export const summary = 'Decide approvals: approvals list|show <id>|approve <id>|reject <id> [--comment <text>]';

const usage = `Usage:
  airlock approvals list [--status pending|approved|rejected|expired]
  airlock approvals show <approvalId>
  airlock approvals approve <approvalId> [--comment <text>]
  airlock approvals reject <approvalId> --comment <reason>

Options:
  --url <url>        API base URL (default: AIRLOCK_URL, else http://127.0.0.1:8787)
  --token <jwt>      bearer token (default: AIRLOCK_TOKEN)
  --as <sub>         local mode: mint a token for <sub> with the dev issuer (AIRLOCK_HOME)
  --role <role>      with --as: a role claim (repeatable)
  --manager <sub>    with --as: the manager claim
  --json             print the API's JSON instead of a summary

approve and reject first fetch the preview, print what you are deciding, and send the
planHash of exactly that preview: if the plan changed meanwhile, the API refuses (409).
`;

const DEFAULT_URL = 'http://127.0.0.1:8787';
const ApprovalId = z.string().regex(ApprovalIdPattern, 'an approval id such as apr_01J…');

/** The parts of a preview the CLI prints; the API may send more. */
export const PreviewSchema = z.object({
  id: z.string(),
  actionId: z.string(),
  status: z.string(),
  planHash: z.string(),
  quorum: z.number(),
  approverRule: z.string().nullable(),
  approvalsSoFar: z.number(),
  expiresAt: z.string(),
  requestedBy: z.object({
    principal: z.string(),
    agent: z.object({ name: z.string(), model: z.string().optional() }),
    verifiedAgent: z.string().nullable().optional(),
    delegationId: z.string().nullable().optional(),
  }),
  reason: z.string().nullable(),
  mode: z.string().optional(),
  steps: z.array(
    z.object({
      id: z.string(),
      tool: z.string(),
      plain: z.string(),
      arguments: z.unknown(),
      piiMasked: z.boolean(),
      compensation: z.object({ tool: z.string() }).nullable(),
    }),
  ),
  amountAtStake: z.array(z.object({ amount: z.number(), currency: z.string() })),
  policies: z.object({ policyIds: z.array(z.string()), reasons: z.array(z.string()) }),
  votes: z.array(z.object({ voter: z.string(), decision: z.string(), comment: z.string().optional(), at: z.string() })),
  viewer: z.object({ canDecide: z.boolean(), refusal: z.string().optional(), vote: z.object({ decision: z.string() }).optional() }),
});
export type Preview = z.infer<typeof PreviewSchema>;

const ListSchema = z.object({
  items: z.array(
    z.object({
      id: z.string(),
      status: z.string(),
      quorum: z.number(),
      approvalsSoFar: z.number(),
      expiresAt: z.string(),
      requestedBy: z.object({ principal: z.string(), agent: z.object({ name: z.string() }) }),
      reason: z.string().nullable(),
      tools: z.array(z.string()),
    }),
  ),
  nextCursor: z.string().nullable(),
});

const ProblemSchema = z.object({ type: z.string(), title: z.string(), status: z.number(), detail: z.string() });

/** The API answered with an RFC 9457 problem (or something unexpected). */
export class ApiCallError extends Error {
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiCallError';
    this.status = status;
  }
}

const money = (m: { amount: number; currency: string }) =>
  `${m.amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ${m.currency}`;

/** The human summary of a preview: what exactly is being approved. */
export function formatPreview(p: Preview): string {
  const lines = [
    `Approval ${p.id}  (${p.status}, ${p.approvalsSoFar}/${p.quorum} approvals, expires ${p.expiresAt})`,
    `  Asked by   ${p.requestedBy.principal}, through agent ${p.requestedBy.agent.name}${p.requestedBy.agent.model ? ` (${p.requestedBy.agent.model})` : ''}`,
    // The body's agent name is a claim; the verified agent and its delegation are what was checked.
    ...(p.requestedBy.verifiedAgent || p.requestedBy.delegationId
      ? [`  Verified   agent ${p.requestedBy.verifiedAgent ?? '(none)'}${p.requestedBy.delegationId ? `, under delegation ${p.requestedBy.delegationId}` : ''}`]
      : []),
    `  Why        ${p.reason ?? '(no reason given)'}`,
    `  At stake   ${p.amountAtStake.length ? p.amountAtStake.map(money).join(' + ') : 'no money'}`,
    `  Policies   ${p.policies.policyIds.join(', ') || '(none)'}`,
    ...p.policies.reasons.map((r) => `             - ${r}`),
    `  Who        ${p.approverRule ?? 'per policy'}${p.mode === 'dry_run' ? '  (dry run)' : ''}`,
    '',
    'What will happen:',
  ];
  for (const step of p.steps) {
    lines.push(`  ${step.plain}`);
    lines.push(`    arguments${step.piiMasked ? ' (personal data hidden: you may not decide)' : ''}: ${JSON.stringify(step.arguments)}`);
  }
  if (p.votes.length) {
    lines.push('', 'Votes so far:');
    for (const v of p.votes) lines.push(`  ${v.voter}: ${v.decision} at ${v.at}${v.comment ? ` — ${v.comment}` : ''}`);
  }
  lines.push('', `Plan hash  ${p.planHash}`);
  if (!p.viewer.canDecide) lines.push(`You cannot decide this approval: ${p.viewer.refusal ?? 'not eligible'}`);
  return `${lines.join('\n')}\n`;
}

interface Api {
  url: string;
  token: string;
}

async function call(api: Api, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${api.url.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${api.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (cause) {
    throw new ApiCallError(0, `cannot reach ${api.url} (is \`airlock dev\` running? set --url or AIRLOCK_URL)`, { cause });
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? (JSON.parse(text) as unknown) : undefined;
  } catch (cause) {
    throw new ApiCallError(res.status, `the API answered ${res.status} with a body that is not JSON`, { cause });
  }
  if (!res.ok) {
    const problem = ProblemSchema.safeParse(json);
    throw new ApiCallError(res.status, problem.success ? `${problem.data.title} (${res.status}): ${problem.data.detail}` : `the API answered ${res.status}`);
  }
  return json;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      as: { type: 'string' },
      role: { type: 'string', multiple: true, short: 'r' },
      manager: { type: 'string' },
      comment: { type: 'string', short: 'c' },
      status: { type: 'string', default: 'pending' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

async function bearer(values: ReturnType<typeof parse>['values']): Promise<string> {
  if (values.token) return values.token;
  if (values.as) {
    const issuer = await loadOrCreateIssuer(resolveStateDir());
    return issuer.sign({ sub: values.as, roles: [...new Set(values.role ?? [])], ...(values.manager ? { manager: values.manager } : {}) }, '15m');
  }
  const env = process.env.AIRLOCK_TOKEN;
  if (env) return env;
  throw new ApiCallError(0, 'no credentials: pass --token, set AIRLOCK_TOKEN, or use --as <sub> --role <role> in local mode');
}

const out = (text: string) => process.stdout.write(text);

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`airlock approvals: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [verb, id, ...extra] = positionals;
  if (values.help || verb === undefined) {
    (values.help ? process.stdout : process.stderr).write(usage);
    return values.help ? 0 : 2;
  }
  if (!['list', 'show', 'approve', 'reject'].includes(verb) || extra.length > 0 || (verb === 'list') !== (id === undefined)) {
    process.stderr.write(`airlock approvals: unexpected arguments\n${usage}`);
    return 2;
  }
  if (id !== undefined && !ApprovalId.safeParse(id).success) {
    process.stderr.write(`airlock approvals: ${JSON.stringify(id.slice(0, 40))} is not an approval id (apr_…)\n`);
    return 2;
  }
  if (verb === 'reject' && !values.comment) {
    process.stderr.write('airlock approvals: reject needs --comment <reason>; the requester and the receipt get it\n');
    return 2;
  }
  try {
    const api: Api = { url: values.url ?? process.env.AIRLOCK_URL ?? DEFAULT_URL, token: await bearer(values) };
    if (verb === 'list') {
      const raw = await call(api, 'GET', `/v1/approvals?status=${encodeURIComponent(values.status ?? 'pending')}`);
      const page = ListSchema.parse(raw);
      if (values.json) out(`${JSON.stringify(raw, null, 2)}\n`);
      else if (page.items.length === 0) out(`No ${values.status} approvals for you.\n`);
      for (const a of values.json ? [] : page.items) {
        out(`${a.id}  ${a.status}  ${a.approvalsSoFar}/${a.quorum}  ${a.requestedBy.principal} via ${a.requestedBy.agent.name}  ${a.tools.join(', ')}  expires ${a.expiresAt}\n`);
        if (a.reason) out(`    ${a.reason}\n`);
      }
      return 0;
    }
    const raw = await call(api, 'GET', `/v1/approvals/${id}`);
    const preview = PreviewSchema.parse(raw);
    if (verb === 'show') {
      out(values.json ? `${JSON.stringify(raw, null, 2)}\n` : formatPreview(preview));
      return 0;
    }

    out(formatPreview(preview));
    if (!preview.viewer.canDecide) return 1;
    const decision = verb === 'approve' ? 'approve' : 'reject';
    out(`\nSending: ${decision} plan ${preview.planHash.slice(0, 12)}… as shown above\n`);
    const result = await call(api, 'POST', `/v1/approvals/${id}/decision`, {
      decision,
      planHash: preview.planHash,
      ...(values.comment ? { comment: values.comment } : {}),
    });
    if (values.json) {
      out(`${JSON.stringify(result, null, 2)}\n`);
      return 0;
    }
    const r = z.object({ status: z.string(), recorded: z.boolean(), approvalsSoFar: z.number(), quorum: z.number() }).parse(result);
    out(
      `${r.recorded ? 'Recorded' : 'Already recorded'}: ${decision}. Approval is ${r.status} (${r.approvalsSoFar}/${r.quorum} approvals).\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof ApiCallError || error instanceof z.ZodError) {
      process.stderr.write(`airlock approvals: ${error instanceof z.ZodError ? 'unexpected answer from the API' : error.message}\n`);
      return 1;
    }
    throw error;
  }
}
