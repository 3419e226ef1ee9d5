import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  HeadersFrameOption,
  HeadersReferrerPolicy,
  HttpVersion,
  OriginProtocolPolicy,
  OriginRequestPolicy,
  OriginSslPolicy,
  PriceClass,
  ResponseHeadersPolicy,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { HttpOrigin, S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Props of {@link AirlockConsole}. */
export interface AirlockConsoleProps {
  /** The HTTP API's id: CloudFront sends /v1/* to it, so the console calls the API on its own origin. */
  readonly apiId: string;
  /** OIDC settings written to the console's config.json. */
  readonly oidc: {
    readonly issuer: string;
    readonly clientId: string;
    readonly scope: string;
    readonly authorizationEndpoint?: string;
    readonly tokenEndpoint?: string;
  };
  /** Bucket that receives the console bucket's S3 server access logs. */
  readonly accessLogsBucket: Bucket;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The Content-Security-Policy of the console: its own scripts and styles only (nothing
 * inline), API calls to its own origin, and the token request to the identity provider.
 */
export function consoleCsp(connect: readonly string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src ${["'self'", ...new Set(connect)].join(' ')}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    'upgrade-insecure-requests',
  ].join('; ');
}

/**
 * The web console in AWS: its static files in a private, encrypted S3 bucket read only by
 * CloudFront through origin access control; HTTPS only, with a response headers policy that
 * sets a strict CSP, HSTS, nosniff, DENY framing and no referrer. CloudFront also routes
 * /v1/* to the HTTP API (no caching, every viewer header but Host forwarded), so the console
 * and the API share one origin: no CORS, and the bearer token never leaves it but for the API.
 * The files are uploaded by `airlock console publish` after `cdk deploy` (bin/commands/console.ts):
 * a deployment-time Lambda (BucketDeployment) would be the stack's only function outside the
 * base construct, with an AWS managed policy and wildcard grants.
 */
export class AirlockConsole extends Construct {
  readonly bucket: Bucket;
  readonly distribution: Distribution;
  readonly headers: ResponseHeadersPolicy;
  /** config.json: what `airlock console publish` uploads beside the console (the ConsoleConfig output). */
  readonly config: Record<string, string>;

  constructor(scope: Construct, id: string, props: AirlockConsoleProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.bucket = new Bucket(this, 'Site', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: 'console-site/',
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: false,
    });

    // CloudFront's standard logs are delivered with ACLs, so their bucket needs object-writer ownership.
    const logs = new Bucket(this, 'CdnLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.OBJECT_WRITER,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: props.removalPolicy,
    });
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This bucket is the target of the console distribution\'s CloudFront access logs; logging it into itself would loop, and its contents are delivery records written by CloudFront.',
    });

    const connect = [props.oidc.issuer, props.oidc.tokenEndpoint].filter((u): u is string => Boolean(u)).map((u) => new URL(u).origin);
    this.headers = new ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'Airlock console: strict CSP and security headers',
      securityHeadersBehavior: {
        contentSecurityPolicy: { contentSecurityPolicy: consoleCsp(connect), override: true },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: HeadersReferrerPolicy.NO_REFERRER, override: true },
        strictTransportSecurity: { accessControlMaxAge: Duration.days(730), includeSubdomains: true, override: true },
      },
      customHeadersBehavior: { customHeaders: [{ header: 'Cross-Origin-Opener-Policy', value: 'same-origin', override: true }] },
    });

    const api = new HttpOrigin(`${props.apiId}.execute-api.${stack.region}.${stack.urlSuffix}`, {
      protocolPolicy: OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [OriginSslPolicy.TLS_V1_2],
    });
    this.distribution = new Distribution(this, 'Cdn', {
      comment: 'Airlock web console',
      defaultRootObject: 'index.html',
      httpVersion: HttpVersion.HTTP2_AND_3,
      priceClass: PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: logs,
      logFilePrefix: 'console/',
      defaultBehavior: {
        origin: S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: this.headers,
        compress: true,
      },
      additionalBehaviors: {
        // The API on the console's origin: never cached, the Authorization header forwarded.
        '/v1/*': {
          origin: api,
          viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: AllowedMethods.ALLOW_ALL,
          cachePolicy: CachePolicy.CACHING_DISABLED,
          originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          responseHeadersPolicy: this.headers,
        },
      },
    });
    Validations.of(this.distribution).acknowledge(
      {
        id: 'AwsSolutions-CFR1',
        reason: 'Approvers and auditors work from anywhere; who may see what is decided by the identity provider and the API, not by country.',
      },
      {
        id: 'AwsSolutions-CFR2',
        reason: 'The distribution serves three static files and forwards /v1/* to API Gateway, which throttles per stage and authorizes every route with the JWT authorizer; attach a web ACL with the organisation\'s own rules where one exists.',
      },
      {
        id: 'AwsSolutions-CFR4',
        reason: 'Viewers connect over HTTPS only (HTTPS_ONLY); the minimum TLS version can only be raised with a custom domain certificate, which this stack does not own. Origins are reached with TLS 1.2.',
      },
    );

    this.config = {
      clientId: props.oidc.clientId,
      scope: props.oidc.scope,
      issuer: props.oidc.issuer,
      ...(props.oidc.authorizationEndpoint ? { authorizationEndpoint: props.oidc.authorizationEndpoint } : {}),
      ...(props.oidc.tokenEndpoint ? { tokenEndpoint: props.oidc.tokenEndpoint } : {}),
      issuerLabel: new URL(props.oidc.issuer).host,
    };
  }

  /** `https://<id>.cloudfront.net/`: the console, and the redirect URI to register with the issuer. */
  get url(): string {
    return `https://${this.distribution.distributionDomainName}/`;
  }
}
