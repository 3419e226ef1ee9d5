import { parseArgs } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { buildConsole, CONTENT_TYPES, type ConsoleFiles } from '../../console/build';

/** `airlock console publish`: uploads the web console to the stack's console bucket. */
export const summary = 'Publish the web console to the stack\'s bucket: console publish --bucket <ConsoleBucketName> --config <ConsoleConfig>';

const usage = `Usage: airlock console publish --bucket <ConsoleBucketName> --config '<ConsoleConfig>' [--region <region>]

Builds the web console (console/src) and uploads index.html, app.js, app.css and config.json
to the console bucket of a deployed stack, using the AWS credentials of the environment. Take
both values from the stack's outputs after \`cdk deploy\`:
  ConsoleBucketName  the bucket (private; CloudFront reads it through origin access control)
  ConsoleConfig      the console's config.json (issuer, client id, scope, endpoints)
The console is then at the ConsoleUrl output. Locally, \`npm start\` serves it at /console.
`;

/** config.json as the stack outputs it: the console reads exactly these members. */
export const ConsoleConfigSchema = z
  .object({
    clientId: z.string().min(1).max(256),
    scope: z.string().min(1).max(512),
    issuer: z.url({ protocol: /^https$/ }),
    authorizationEndpoint: z.url({ protocol: /^https$/ }).optional(),
    tokenEndpoint: z.url({ protocol: /^https$/ }).optional(),
    issuerLabel: z.string().max(256).optional(),
  })
  .strict();
export type ConsoleConfig = z.infer<typeof ConsoleConfigSchema>;

/**
 * Uploads the console's files and its config.json. Each object says `no-cache`, so CloudFront
 * revalidates with the bucket and a new publish is live without an invalidation.
 */
export async function publishConsole(s3: S3Client, bucket: string, config: ConsoleConfig, files: ConsoleFiles): Promise<string[]> {
  const objects = new Map(files);
  objects.set('config.json', Buffer.from(JSON.stringify(config)));
  // index.html last: a visitor never loads a page whose script is not there yet.
  const order = [...objects.keys()].sort((a, b) => Number(a === 'index.html') - Number(b === 'index.html'));
  for (const key of order) {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: objects.get(key),
        ContentType: CONTENT_TYPES[key] ?? 'application/octet-stream',
        CacheControl: 'no-cache',
      }),
    );
  }
  return order;
}

export async function run(argv: string[], s3Factory: (region?: string) => S3Client = (region) => new S3Client(region ? { region } : {})): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { help: { type: 'boolean', short: 'h' }, bucket: { type: 'string' }, config: { type: 'string' }, region: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || positionals[0] !== 'publish' || positionals.length !== 1 || !values.bucket || !values.config) {
    process.stdout.write(usage);
    return values.help ? 0 : 2;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(values.config);
  } catch {
    process.stderr.write('airlock console: --config is not JSON; pass the ConsoleConfig output as it is\n');
    return 2;
  }
  const config = ConsoleConfigSchema.safeParse(raw);
  if (!config.success) {
    process.stderr.write(`airlock console: --config is not a console config: ${config.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}\n`);
    return 2;
  }
  const keys = await publishConsole(s3Factory(values.region), values.bucket, config.data, await buildConsole());
  process.stdout.write(`published ${keys.join(', ')} to s3://${values.bucket}/\n`);
  return 0;
}
