import { type RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { HttpApi, HttpMethod, HttpNoneAuthorizer, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { type FunctionName, type RouteSpec, routeKey } from '../../lambdas/api/routes';
import type { AirlockFunction } from './airlock-function';

/** Props of {@link AirlockApi}. */
export interface AirlockApiProps {
  /** The route table (lambdas/api/routes.ts): the only list of routes. */
  readonly routes: readonly RouteSpec[];
  /** The function serving each `fn` of the route table. */
  readonly functions: Readonly<Record<FunctionName, AirlockFunction>>;
  readonly jwtIssuer: string;
  readonly jwtAudience: readonly string[];
  readonly throttling: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * One JSON line per request. No headers, no body, no query string: those carry tokens,
 * idempotency keys and arguments. The principal's `sub` is kept for audit correlation.
 */
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  latencyMs: '$context.responseLatency',
  integrationLatencyMs: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  authorizerError: '$context.authorizer.error',
  sub: '$context.authorizer.claims.sub',
});

/**
 * The agent-facing HTTP API (API Gateway v2). Routes come from the route table, so a route
 * added there is deployed with no change here; `auth: true` routes use the JWT authorizer,
 * `auth: false` ones (health checks) none. The default stage has access logs and throttling.
 */
export class AirlockApi extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;
  readonly authorizer: HttpJwtAuthorizer;

  constructor(scope: Construct, id: string, props: AirlockApiProps) {
    super(scope, id);

    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'Airlock: the control plane between AI agents and the systems they act on',
      // The stage is built below: HttpApi's own default stage takes no access-log settings.
      createDefaultStage: false,
    });

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttling.rateLimit, burstLimit: props.throttling.burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });

    this.authorizer = new HttpJwtAuthorizer('JwtAuthorizer', props.jwtIssuer, {
      jwtAudience: [...props.jwtAudience],
      identitySource: ['$request.header.Authorization'],
    });
    const none = new HttpNoneAuthorizer();

    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    const integrationFor = (fn: FunctionName): HttpLambdaIntegration => {
      let integration = integrations.get(fn);
      if (!integration) {
        integration = new HttpLambdaIntegration(`${fn}-integration`, props.functions[fn].function);
        integrations.set(fn, integration);
      }
      return integration;
    };

    const seen = new Set<string>();
    for (const route of props.routes) {
      // The local runtime's extras (GET /v1/metrics): in AWS their data lives in CloudWatch.
      if (route.localOnly) continue;
      const key = routeKey(route);
      if (seen.has(key)) throw new Error(`Duplicate route ${key} in the route table`);
      seen.add(key);
      const [created] = this.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: integrationFor(route.fn),
        authorizer: route.auth ? this.authorizer : none,
      });
      if (!route.auth && created) {
        Validations.of(created).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason: route.verifiesOwnToken
            ? `${key} verifies the bearer token in its function (same issuer, audience and JWKS as the JWT authorizer) because MCP clients need its 401 to carry WWW-Authenticate resource_metadata, which the authorizer cannot send; no request without a valid token reaches a tool.`
            : `${key} is declared auth: false in lambdas/api/routes.ts, the reviewed list of public routes (the health check, the OpenAPI document and the OAuth protected resource metadata; they return no principal data). Every other route uses the JWT authorizer.`,
        });
      }
    }
  }

  /** The base URL of the default stage. */
  get url(): string {
    return this.stage.url;
  }
}
