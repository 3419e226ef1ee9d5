import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { consoleCsp } from '../../lib/constructs/console';
import { logicalId, synthAirlock, type Synthesized } from './support';

/** The web console in AWS: a private bucket behind CloudFront with OAC, HTTPS only, strict headers. */

let s: Synthesized;
beforeAll(() => {
  s = synthAirlock();
});

type Json = Record<string, any>;
const one = (type: string): Json => {
  const found = Object.values(s.template.findResources(type));
  expect(found).toHaveLength(1);
  return found[0] as Json;
};

describe('the console distribution', () => {
  it('reads the private, encrypted, TLS-only site bucket through origin access control', () => {
    const site = logicalId(s.stack.console.bucket);
    s.template.hasResourceProperties('AWS::S3::Bucket', Match.objectLike({})); // the template has buckets at all
    const bucket = s.template.findResources('AWS::S3::Bucket')[site] as Json;
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(bucket.Properties.LoggingConfiguration.LogFilePrefix).toBe('console-site/');

    const oac = one('AWS::CloudFront::OriginAccessControl');
    expect(oac.Properties.OriginAccessControlConfig).toMatchObject({ OriginAccessControlOriginType: 's3', SigningBehavior: 'always', SigningProtocol: 'sigv4' });

    const policies = Object.values(s.template.findResources('AWS::S3::BucketPolicy')).filter((p) => JSON.stringify((p as Json).Properties.Bucket).includes(site)) as Json[];
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement as Json[]);
    const reads = statements.filter((st) => st.Effect === 'Allow');
    // Only CloudFront, only for this distribution.
    expect(reads).toHaveLength(1);
    expect(reads[0]!.Principal).toEqual({ Service: 'cloudfront.amazonaws.com' });
    expect(JSON.stringify(reads[0]!.Condition)).toContain(logicalId(s.stack.console.distribution));
    expect(statements.some((st) => st.Effect === 'Deny' && JSON.stringify(st.Condition).includes('aws:SecureTransport'))).toBe(true);
  });

  it('serves the console over HTTPS only and routes /v1/* to the HTTP API uncached', () => {
    const dist = one('AWS::CloudFront::Distribution').Properties.DistributionConfig as Json;
    expect(dist.DefaultRootObject).toBe('index.html');
    expect(dist.DefaultCacheBehavior.ViewerProtocolPolicy).toBe('https-only');
    expect(dist.Logging).toBeDefined();
    const api = dist.CacheBehaviors.find((b: Json) => b.PathPattern === '/v1/*');
    expect(api.ViewerProtocolPolicy).toBe('https-only');
    expect(api.CachePolicyId).toBe('4135ea2d-6df8-44a3-9df3-4b5a84be39ad'); // Managed-CachingDisabled
    expect(api.OriginRequestPolicyId).toBe('b689b0a8-53d0-40ab-baf2-68738e2966ac'); // Managed-AllViewerExceptHostHeader
    expect(api.AllowedMethods).toEqual(expect.arrayContaining(['GET', 'POST', 'DELETE']));
    const origin = dist.Origins.find((o: Json) => o.Id === api.TargetOriginId);
    expect(JSON.stringify(origin.DomainName)).toContain(logicalId(s.stack.api.httpApi));
    expect(origin.CustomOriginConfig).toMatchObject({ OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'] });
    // Both behaviours carry the security headers.
    const headers = logicalId(s.stack.console.headers);
    expect(JSON.stringify(dist.DefaultCacheBehavior.ResponseHeadersPolicyId)).toContain(headers);
    expect(JSON.stringify(api.ResponseHeadersPolicyId)).toContain(headers);
  });

  it('sends a strict CSP (no inline code) and the security headers on every response', () => {
    const config = one('AWS::CloudFront::ResponseHeadersPolicy').Properties.ResponseHeadersPolicyConfig as Json;
    const sec = config.SecurityHeadersConfig;
    const csp: string = sec.ContentSecurityPolicy.ContentSecurityPolicy;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    // The token request goes to the configured issuer, and nowhere else.
    expect(csp).toContain("connect-src 'self' https://auth.example.com;");
    expect(sec.ContentSecurityPolicy.Override).toBe(true);
    expect(sec.ContentTypeOptions.Override).toBe(true);
    expect(sec.FrameOptions.FrameOption).toBe('DENY');
    expect(sec.ReferrerPolicy.ReferrerPolicy).toBe('no-referrer');
    expect(sec.StrictTransportSecurity.AccessControlMaxAgeSec).toBeGreaterThanOrEqual(31_536_000);
  });

  it('outputs the console URL, its bucket and the config.json naming the issuer and client', () => {
    const config = { clientId: 'airlock-console', scope: 'openid', issuer: 'https://auth.example.com/', issuerLabel: 'auth.example.com' };
    expect(s.stack.console.config).toEqual(config);
    expect(JSON.parse(s.template.findOutputs('ConsoleConfig').ConsoleConfig!.Value as string)).toEqual(config);
    expect(JSON.stringify(s.template.findOutputs('ConsoleBucketName').ConsoleBucketName!.Value)).toContain(logicalId(s.stack.console.bucket));
    expect(s.template.findOutputs('ConsoleUrl')).not.toEqual({});
    // No deployment-time function: the files are published by the CLI.
    expect(s.template.findResources('Custom::CDKBucketDeployment')).toEqual({});
  });

  it('takes explicit endpoints from the config into config.json and the CSP', () => {
    const { stack } = synthAirlock({
      jwt: { issuer: 'https://login.example.org/', audience: ['airlock'] },
      console: { clientId: 'console-spa', authorizationEndpoint: 'https://login.example.org/oauth2/authorize', tokenEndpoint: 'https://tokens.example.org/oauth2/token' },
    });
    expect(stack.console.config).toMatchObject({ clientId: 'console-spa', authorizationEndpoint: 'https://login.example.org/oauth2/authorize', tokenEndpoint: 'https://tokens.example.org/oauth2/token' });
    expect(consoleCsp(['https://login.example.org', 'https://tokens.example.org'])).toContain("connect-src 'self' https://login.example.org https://tokens.example.org;");
  });
});

describe('the console build `airlock console publish` uploads', () => {
  it('holds index.html, app.js and app.css, and index.html loads only same-origin files (no inline code)', async () => {
    const { writeConsole } = await import('../../console/build');
    const dir = writeConsole();
    for (const f of ['index.html', 'app.js', 'app.css']) expect(existsSync(join(dir, f))).toBe(true);
    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    expect(html).toMatch(/<script src="app.js" defer><\/script>/);
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/i);
  });
});
