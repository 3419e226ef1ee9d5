import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { connectors } from '../../lambdas/tools/registry';
import { RECONCILE_TIMEOUT_SECONDS } from '../../lib/airlock-stack';
import { routeKey, routes } from '../../lambdas/api/routes';
import { SecretNames } from '../../lambdas/ports/secrets';
import { routes as apiRoutes } from '../../lambdas/api/routes';
import { CONNECTOR_KEY_PREFIXES, connectorBreakerKey, LEDGER_CONNECTOR_ACTIONS, LEDGER_READ_WRITE_ACTIONS } from '../../lib/constructs/ledger';
import { deriveSagaTimeouts, EXPRESS_MAX_EXECUTION_SECONDS, STANDARD_MAX_EXECUTION_SECONDS, TASK_TIMEOUT_MARGIN_SECONDS } from '../../lambdas/saga/timeouts';
import { sagaTimeoutConfig } from '../../lib/config';
import { ACTION_RUN_ASL, APPROVAL_STATE, readAsl } from '../../lib/constructs/saga';
import {
  actionsOf,
  logicalId,
  mentions,
  resourcesOf,
  type Statement,
  statementsByRole,
  type Synthesized,
  synthAirlock,
} from './support';

let s: Synthesized;
let byRole: Map<string, Statement[]>;
/** Role logical ids by function name (`intake`, `connector-echo`, ...). */
let roles: Record<string, string>;

const allows = (role: string) => (byRole.get(role) ?? []).filter((st) => st.Effect === 'Allow');

beforeAll(() => {
  // Prepare: one synth for the whole file (synth is the slow part).
  s = synthAirlock();
  byRole = statementsByRole(s.template);
  roles = Object.fromEntries(Object.entries(s.stack.functions).map(([name, fn]) => [name, logicalId(fn.role)]));
  for (const [name, fn] of s.stack.connectorFunctions) roles[`connector-${name}`] = logicalId(fn.role);
  roles.delegationExpiry = logicalId(s.stack.delegationExpiry.fn.role);
});

describe('audit vault', () => {
  it('locks objects in COMPLIANCE mode for the configured days, versioned', () => {
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: s.config.auditRetentionDays } },
      },
      VersioningConfiguration: { Status: 'Enabled' },
    });
    expect(s.config.auditRetentionDays).toBe(400);
  });

  it('blocks public access, uses the customer-managed key, and logs access to the log bucket', () => {
    const vault = logicalId(s.stack.auditVault.bucket);
    const logs = logicalId(s.stack.auditVault.accessLogs);
    const bucket = s.template.toJSON().Resources[vault];
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault).toEqual({
      SSEAlgorithm: 'aws:kms',
      KMSMasterKeyID: { 'Fn::GetAtt': [logicalId(s.stack.auditVault.key), 'Arn'] },
    });
    expect(bucket.Properties.LoggingConfiguration.DestinationBucketName).toEqual({ Ref: logs });
    expect(bucket.DeletionPolicy).toBe('Retain');
  });

  it('requires TLS on both buckets and keeps the log bucket private', () => {
    for (const bucket of [s.stack.auditVault.bucket, s.stack.auditVault.accessLogs]) {
      s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: logicalId(bucket) },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: Match.absent(),
      PublicAccessBlockConfiguration: Match.objectEquals({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      }),
    });
  });

  it('denies deletes (and delete markers) on the vault to every principal', () => {
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId(s.stack.auditVault.bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Sid: 'DenyDeletes', Effect: 'Deny', Principal: { AWS: '*' }, Action: ['s3:DeleteObject', 's3:DeleteObjectVersion'] }),
        ]),
      },
    });
  });

  it('lets no role bypass governance, set legal holds or delete objects; only receipts, reconciliation reports and consent receipts set retention', () => {
    const forbidden = /^s3:(BypassGovernanceRetention|PutObjectLegalHold|DeleteObject.*|PutBucketObjectLockConfiguration|\*)$/;
    for (const [role, statements] of byRole) {
      const allowed = statements.filter((st) => st.Effect === 'Allow').flatMap(actionsOf);
      expect(allowed.filter((a) => forbidden.test(a)), role).toEqual([]);
      // Receipts, reconciliation reports, consent receipts (intake) and expiry receipts (the sweep) name COMPLIANCE retention on every PUT (it can only be lengthened in that mode).
      if (![roles.receipts, roles.intake, roles.delegationExpiry, logicalId(s.stack.reconciler.role)].includes(role)) expect(allowed.filter((a) => a === 's3:PutObjectRetention'), role).toEqual([]);
    }
  });

  it('gives the receipts role object access under receipts/ and digests/ only', () => {
    const vault = logicalId(s.stack.auditVault.bucket);
    const s3 = allows(roles.receipts!).filter((st) => actionsOf(st).some((a) => a.startsWith('s3:')));
    expect(s3.flatMap(actionsOf).sort()).toEqual(['s3:GetObject', 's3:ListBucket', 's3:PutObject', 's3:PutObjectRetention']);
    const objectStatement = s3.find((st) => actionsOf(st).includes('s3:PutObject'))!;
    const suffixes = resourcesOf(objectStatement).map((r) => JSON.stringify(r));
    expect(suffixes).toHaveLength(2);
    expect(suffixes.every((r) => r.includes(vault))).toBe(true);
    expect(suffixes.some((r) => r.includes('/receipts/*'))).toBe(true);
    expect(suffixes.some((r) => r.includes('/digests/*'))).toBe(true);
  });

  it('gives connectors and the other functions nothing on S3 (the reconciler: its reports only, test/infra/reconcile.test.ts; intake: consent receipts only, test/infra/delegations.test.ts; the expiry sweep: delegation receipts only, test/infra/delegation-expiry.test.ts)', () => {
    for (const name of Object.keys(roles).filter((n) => !['receipts', 'reconcile', 'intake', 'delegationExpiry'].includes(n))) {
      const s3 = allows(roles[name]!).flatMap(actionsOf).filter((a) => a.startsWith('s3:'));
      expect(s3, name).toEqual([]);
    }
  });
});

describe('ledger', () => {
  it('is on demand with PITR, deletion protection, TTL, the key schema, gsi1 and the day index (gsi2)', () => {
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        }),
        // As the local table (ledgerTableDefinition): sparse, projecting only what never changes.
        Match.objectLike({
          IndexName: 'gsi2',
          KeySchema: [
            { AttributeName: 'gsi2pk', KeyType: 'HASH' },
            { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['principal', 'tools'] },
        }),
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });

  it('is encrypted with its own customer-managed, rotating key', () => {
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: {
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': [logicalId(s.stack.ledger.key), 'Arn'] },
      },
    });
    const keys = s.template.findResources('AWS::KMS::Key');
    // The ledger's, the audit vault's and the alarm topic's; all rotating.
    expect(Object.keys(keys)).toHaveLength(3);
    for (const key of Object.values(keys)) expect(key.Properties.EnableKeyRotation).toBe(true);
  });

  it('grants the core functions the exact item actions and no wildcard DynamoDB action anywhere', () => {
    for (const name of ['intake', 'saga', 'approvals']) {
      const ddb = allows(roles[name]!).flatMap(actionsOf).filter((a) => a.startsWith('dynamodb:'));
      expect(ddb.sort(), name).toEqual([...LEDGER_READ_WRITE_ACTIONS].sort());
    }
    for (const statements of byRole.values()) {
      expect(statements.flatMap(actionsOf).filter((a) => a.startsWith('dynamodb:') && a.includes('*'))).toEqual([]);
      expect(statements.flatMap(actionsOf)).not.toContain('dynamodb:Scan');
    }
  });

  it("spend caps need no new permission: the saga's TransactWriteItems is authorized per item, connectors cannot reach the counters", () => {
    // IAM has no TransactWriteItems action: each Put / Update in it needs PutItem / UpdateItem.
    const saga = allows(roles.saga!).flatMap(actionsOf);
    expect(saga).toEqual(expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem']));
    expect(saga.filter((a) => /Transact/.test(a))).toEqual([]);
    // The intake function reads the counters (BatchGetItem) to refuse a plan that would cross a cap.
    expect(allows(roles.intake!).flatMap(actionsOf)).toContain('dynamodb:BatchGetItem');
    for (const prefix of ['SPENDCAP#', 'RESERVE#']) expect(CONNECTOR_KEY_PREFIXES.some((p) => prefix.startsWith(p))).toBe(false);
  });

  it('keeps connectors to STEP# partition keys (grant uses live on the step records), and their own BREAKER#<name>, with dynamodb:LeadingKeys', () => {
    expect(s.stack.connectorFunctions.size).toBe(connectors.length);
    for (const name of s.stack.connectorFunctions.keys()) {
      const ddb = allows(roles[`connector-${name}`]!).filter((st) => actionsOf(st).some((a) => a.startsWith('dynamodb:')));
      expect(ddb.length, name).toBe(2);
      for (const st of ddb) expect(actionsOf(st).sort()).toEqual([...LEDGER_CONNECTOR_ACTIONS].sort());
      expect(ddb.map((st) => st.Condition)).toEqual([
        { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': CONNECTOR_KEY_PREFIXES.map((p) => `${p}*`) } },
        // Exact, not a prefix: a connector cannot trip or reset another connector's breaker.
        { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [connectorBreakerKey(name)] } },
      ]);
    }
  });

  it('lets every function serving /v1 routes count requests against rate limits, the receipts function on RATE# items only', () => {
    // The rate-limit window counters (ledger.md RATE#) are taken with UpdateItem and read with BatchGetItem.
    const serving = new Set(apiRoutes.filter((r) => r.auth && r.path.startsWith('/v1/')).map((r) => r.fn));
    expect([...serving].sort()).toEqual(['approvals', 'intake', 'receipts', 'reconcile']);
    for (const name of serving) {
      const statements = allows(roles[name]!).filter((st) => actionsOf(st).includes('dynamodb:UpdateItem'));
      expect(statements.flatMap(actionsOf), name).toEqual(expect.arrayContaining(['dynamodb:UpdateItem', 'dynamodb:BatchGetItem']));
      expect(statements.flatMap((st) => [st.Resource].flat()), name).toContainEqual({ 'Fn::GetAtt': [logicalId(s.stack.ledger.table), 'Arn'] });
    }
    // The receipts function writes nothing else in the ledger: its only UpdateItem is on RATE# partitions.
    const receiptWrites = allows(roles.receipts!).filter((st) => actionsOf(st).some((a) => /^dynamodb:(Put|Update|Delete)Item$/.test(a)));
    expect(receiptWrites.map((st) => st.Condition)).toEqual([{ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['RATE#*'] } }]);
  });

  it('sets LEDGER_TABLE on every function bound to the ledger', () => {
    for (const fn of [s.stack.functions.intake, s.stack.functions.saga, s.stack.functions.approvals, ...s.stack.connectorFunctions.values()]) {
      s.template.hasResourceProperties('AWS::Lambda::Function', {
        Role: { 'Fn::GetAtt': [logicalId(fn.role), 'Arn'] },
        Environment: { Variables: Match.objectLike({ LEDGER_TABLE: { Ref: logicalId(s.stack.ledger.table) } }) },
      });
    }
  });
});

describe('secrets', () => {
  const readersOf = (secretId: string) =>
    [...byRole]
      .filter(([, sts]) =>
        sts.some(
          (st) =>
            st.Effect === 'Allow' &&
            actionsOf(st).includes('secretsmanager:GetSecretValue') &&
            resourcesOf(st).some((r) => mentions(r, secretId)),
        ),
      )
      .map(([role]) => role)
      .sort();

  it('makes each vendor secret readable by exactly its own connector role, and the reconcile role for reconciled connectors', () => {
    for (const name of s.stack.connectorFunctions.keys()) {
      const secret = s.stack.secrets.vendorCredential(name);
      s.template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: SecretNames.vendorCredential(name) });
      const reconciled = connectors.find((c) => c.name === name)?.reconcile !== undefined;
      expect(readersOf(logicalId(secret)), name).toEqual([roles[`connector-${name}`], ...(reconciled ? [logicalId(s.stack.reconciler.role)] : [])].sort());
    }
  });

  it('makes the grant-signing key readable by the configured minters, the connectors and its rotation function only', () => {
    const expected = [
      ...s.config.grantKeyReaders.map((r) => roles[r]!),
      ...[...s.stack.connectorFunctions.keys()].map((n) => roles[`connector-${n}`]!),
      // Deliberate: the rotation protocol reads AWSCURRENT and AWSPENDING.
      logicalId(s.stack.grantKeyRotator.role),
    ].sort();
    s.template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: SecretNames.grantSigningKey });
    expect(readersOf(logicalId(s.stack.secrets.grantSigningKey))).toEqual(expected);
  });

  it('makes the page-cursor key readable by the two functions that serve listings, and names it to them', () => {
    s.template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: SecretNames.cursorKey });
    expect(readersOf(logicalId(s.stack.secrets.cursorKeySecret))).toEqual([roles.intake, roles.approvals].sort());
    for (const fn of [s.stack.functions.intake, s.stack.functions.approvals]) {
      s.template.hasResourceProperties('AWS::Lambda::Function', {
        Role: { 'Fn::GetAtt': [logicalId(fn.role), 'Arn'] },
        Environment: { Variables: Match.objectLike({ CURSOR_KEY_SECRET: SecretNames.cursorKey }) },
      });
    }
  });

  it('denies GetSecretValue to every other principal through the secret resource policy', () => {
    const policies = s.template.findResources('AWS::SecretsManager::ResourcePolicy');
    // The grant and cursor keys, the audit vault's redaction and digest keys, one per connector.
    expect(Object.keys(policies)).toHaveLength(4 + s.stack.connectorFunctions.size);
    for (const policy of Object.values(policies)) {
      expect(policy.Properties.ResourcePolicy.Statement).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 'secretsmanager:GetSecretValue',
          Condition: { StringNotEquals: { 'aws:PrincipalArn': expect.any(Array) } },
        }),
      );
    }
  });
});

describe('grant-signing key rotation', () => {
  const rotatorRole = () => logicalId(s.stack.grantKeyRotator.role);
  const grantKey = () => logicalId(s.stack.secrets.grantSigningKey);

  it('schedules rotation of the signing key every configured number of days, through the rotation function', () => {
    const schedules = s.template.findResources('AWS::SecretsManager::RotationSchedule');
    expect(Object.values(schedules)).toHaveLength(1);
    expect(Object.values(schedules)[0]!.Properties).toEqual({
      SecretId: { Ref: grantKey() },
      RotationLambdaARN: { 'Fn::GetAtt': [logicalId(s.stack.grantKeyRotator.function), 'Arn'] },
      RotationRules: { ScheduleExpression: `rate(${s.config.grantKeyRotationDays} days)` },
      RotateImmediatelyOnUpdate: true,
    });
    expect(s.config.grantKeyRotationDays).toBe(7);
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [rotatorRole(), 'Arn'] },
      Handler: 'index.handler',
    });
  });

  it('lets Secrets Manager, from this account only, invoke the rotation function, before the schedule exists', () => {
    const permissions = Object.entries(s.template.findResources('AWS::Lambda::Permission')).filter(
      ([, p]) => p.Properties.Principal === 'secretsmanager.amazonaws.com',
    );
    expect(permissions).toHaveLength(1);
    const [permissionId, permission] = permissions[0]!;
    expect(permission.Properties).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [logicalId(s.stack.grantKeyRotator.function), 'Arn'] },
      Principal: 'secretsmanager.amazonaws.com',
      SourceAccount: { Ref: 'AWS::AccountId' },
    });
    const schedule = Object.values(s.template.findResources('AWS::SecretsManager::RotationSchedule'))[0]!;
    expect(schedule.DependsOn).toContain(permissionId);
  });

  it('gives the rotation role exactly the rotation actions on the signing key, and nothing else outside logs and tracing', () => {
    const statements = allows(rotatorRole());
    const secretStatements = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('secretsmanager:')));
    expect(secretStatements).toHaveLength(1);
    expect(actionsOf(secretStatements[0]!).sort()).toEqual([
      'secretsmanager:DescribeSecret',
      'secretsmanager:GetSecretValue',
      'secretsmanager:PutSecretValue',
      'secretsmanager:UpdateSecretVersionStage',
    ]);
    expect(secretStatements[0]!.Resource).toEqual({ Ref: grantKey() });
    const others = statements.flatMap(actionsOf).filter((a) => !a.startsWith('secretsmanager:') && !a.startsWith('logs:') && !a.startsWith('xray:'));
    expect(others).toEqual([]);
  });

  it('lets no role write the signing key or move its stages but the rotation role, and nobody call GetRandomPassword', () => {
    for (const [role, statements] of byRole) {
      const actions = statements.filter((st) => st.Effect === 'Allow').flatMap(actionsOf);
      expect(actions, role).not.toContain('secretsmanager:GetRandomPassword');
      if (role === rotatorRole()) continue;
      expect(actions.filter((a) => a === 'secretsmanager:PutSecretValue' || a === 'secretsmanager:UpdateSecretVersionStage'), role).toEqual([]);
    }
  });
});

describe('http api', () => {
  it('has a JWT authorizer with the configured issuer and audience', () => {
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: 'https://auth.example.com/', Audience: ['airlock-api', 'airlock-cli'] },
    });
  });

  it('builds one route per entry of the route table, authorizing exactly the auth: true ones', () => {
    const deployed = Object.values(s.template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    const served = routes.filter((r) => !r.localOnly);
    expect(deployed.map((r) => r.RouteKey).sort()).toEqual(served.map(routeKey).sort());
    // Local-only routes (GET /v1/metrics) have no AWS route: their data is in CloudWatch there.
    expect(served.length).toBe(routes.length - 1);
    expect(deployed.find((r) => r.RouteKey === 'GET /v1/metrics')).toBeUndefined();
    for (const route of served) {
      const props = deployed.find((r) => r.RouteKey === routeKey(route));
      expect(props.AuthorizationType, routeKey(route)).toBe(route.auth ? 'JWT' : 'NONE');
      expect(props.AuthorizerId === undefined, routeKey(route)).toBe(!route.auth);
    }
    expect(deployed.find((r) => r.RouteKey === 'GET /healthz')?.AuthorizationType).toBe('NONE');
  });

  it('logs access as JSON to a retained log group and throttles the default stage', () => {
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [logicalId(s.stack.api.accessLogs), 'Arn'] },
        Format: Match.stringLikeRegexp('"requestId":"\\$context\\.requestId"'),
      },
      DefaultRouteSettings: { ThrottlingRateLimit: 25, ThrottlingBurstLimit: 40 },
    });
    s.template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });
});

describe('functions', () => {
  it('share the base construct defaults', () => {
    const fns = Object.values(s.template.findResources('AWS::Lambda::Function')).map((f) => f.Properties);
    // intake, policy, approvals, receipts, the grant-key rotator, the reconciler, the approvals gauge, the delegation expiry sweep, one per connector.
    expect(fns).toHaveLength(8 + connectors.length);
    for (const fn of fns) {
      expect(fn.Runtime).toBe('nodejs24.x');
      expect(fn.Architectures).toEqual(['arm64']);
      expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Handler).toBe('index.handler');
      expect(fn.MemorySize).toBe(768);
      // The connector timeout, the default, and the reconciler's (a run asks every reconciled vendor).
      expect([12, 20, RECONCILE_TIMEOUT_SECONDS]).toContain(fn.Timeout);
      expect(fn.LoggingConfig.LogGroup).toHaveProperty('Ref');
      // Stacks are mapped on the first error (middleware/source-maps.ts, tested there), not by
      // Node at every cold start.
      expect(fn.Environment.Variables.NODE_OPTIONS).toBeUndefined();
    }
    for (const group of Object.values(s.template.findResources('AWS::Logs::LogGroup'))) {
      expect(group.Properties.RetentionInDays).toBe(30);
    }
  });

  it('point the policy-evaluating functions, and only them, at the shipped policy set', () => {
    for (const [name, fn] of [...Object.entries(s.stack.functions), ...[...s.stack.connectorFunctions].map(([n, f]) => [`connector-${n}`, f] as const)]) {
      const props = s.template.toJSON().Resources[logicalId(fn.function)].Properties;
      const expected = ['intake', 'saga', 'approvals'].includes(name) ? '/var/task/policies' : undefined;
      expect(props.Environment.Variables.AIRLOCK_POLICY_DIR, name).toBe(expected);
    }
  });

  it('points each connector at its vendor from config, and only that one', () => {
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [roles['connector-travel'], 'Arn'] },
      Environment: { Variables: Match.objectLike({ CONNECTOR_NAME: 'travel', VENDOR_BASE_URL: 'https://travel.vendor.example/api' }) },
    });
    const payments = Object.values(s.template.findResources('AWS::Lambda::Function')).find(
      (r) => (r as { Properties: { Environment?: { Variables?: Record<string, unknown> } } }).Properties.Environment?.Variables?.CONNECTOR_NAME === 'payments',
    ) as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    expect(payments.Properties.Environment.Variables.VENDOR_BASE_URL).toBeUndefined();
  });

  it('runs one connector function per registered connector', () => {
    for (const c of connectors) {
      s.template.hasResourceProperties('AWS::Lambda::Function', {
        Timeout: 20,
        Environment: { Variables: Match.objectLike({ CONNECTOR_NAME: c.name, GRANT_TTL_SECONDS: '120' }) },
      });
    }
  });

  it('use no AWS managed policies', () => {
    for (const role of Object.values(s.template.findResources('AWS::IAM::Role'))) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  it('use "*" resources only for actions that support nothing narrower', () => {
    const allowed = new Set([
      'xray:PutTraceSegments',
      'xray:PutTelemetryRecords',
      'xray:GetSamplingRules',
      'xray:GetSamplingTargets',
      'states:SendTaskSuccess',
      'states:SendTaskFailure',
      'logs:CreateLogDelivery',
      'logs:GetLogDelivery',
      'logs:UpdateLogDelivery',
      'logs:DeleteLogDelivery',
      'logs:ListLogDeliveries',
      'logs:PutResourcePolicy',
      'logs:DescribeResourcePolicies',
      'logs:DescribeLogGroups',
    ]);
    for (const [role, statements] of byRole) {
      for (const st of statements.filter((x) => x.Effect === 'Allow' && resourcesOf(x).includes('*'))) {
        expect(actionsOf(st).filter((a) => !allowed.has(a)), role).toEqual([]);
      }
      expect(statements.flatMap(actionsOf).filter((a) => a.endsWith(':*') || a === '*'), role).toEqual([]);
    }
  });
});

describe('saga', () => {
  const machines = () => Object.values(s.template.findResources('AWS::StepFunctions::StateMachine')).map((r) => r.Properties as Record<string, unknown>);
  const stateMachine = () => machines().find((p) => p.StateMachineType === 'STANDARD')!;
  const runMachine = () => machines().find((p) => p.StateMachineType === 'EXPRESS')!;

  it('is STANDARD with ALL logging (no execution data) and tracing', () => {
    expect(stateMachine()).toMatchObject({
      StateMachineType: 'STANDARD',
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logicalId(s.stack.saga.logGroup), 'Arn'] } } }],
      },
      TracingConfiguration: { Enabled: true },
    });
  });

  it('has an EXPRESS run beside it, logged (its only history: ALL, no execution data) and traced, under a fixed name the saga reaches it by', () => {
    expect(machines()).toHaveLength(2);
    expect(runMachine()).toMatchObject({
      StateMachineType: 'EXPRESS',
      StateMachineName: `${s.stack.stackName}-action-run`,
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logicalId(s.stack.saga.runLogGroup), 'Arn'] } } }],
      },
      TracingConfiguration: { Enabled: true },
    });
    const definition = JSON.parse(runMachine().DefinitionString as string) as { TimeoutSeconds: number; States: Record<string, unknown> };
    expect(definition.TimeoutSeconds).toBe(EXPRESS_MAX_EXECUTION_SECONDS);
    expect(Object.keys(definition.States)).toEqual(expect.arrayContaining(['ExecuteStep', 'CompensateStep', 'WriteReceipt', 'HandToSaga']));
    // The run reaches the saga by reference; the saga the run by its name (no cycle).
    const runSubs = runMachine().DefinitionSubstitutions as Record<string, unknown>;
    expect(runSubs.SagaWorkflowArn).toEqual({ Ref: logicalId(s.stack.saga.stateMachine) });
    const sagaSubs = stateMachine().DefinitionSubstitutions as Record<string, unknown>;
    expect(JSON.stringify(sagaSubs.RunWorkflowArn)).toContain(`:stateMachine:${s.stack.stackName}-action-run`);
  });

  it('lets the saga run the run and watch it (.sync), and the run hand an action to the saga, and nothing more on either', () => {
    const sagaRole = logicalId(s.stack.saga.stateMachine.role);
    const runRole = logicalId(s.stack.saga.runStateMachine.role);
    const sagaStates = allows(sagaRole).filter((st) => actionsOf(st).some((a) => a.startsWith('states:') || a.startsWith('events:')));
    expect(sagaStates.flatMap(actionsOf).sort()).toEqual(['events:DescribeRule', 'events:PutRule', 'events:PutTargets', 'states:DescribeExecution', 'states:StartExecution', 'states:StopExecution']);
    for (const st of sagaStates) {
      const text = JSON.stringify(st.Resource);
      if (actionsOf(st).some((a) => a.startsWith('events:'))) expect(text).toContain('rule/StepFunctionsGetEventsForStepFunctionsExecutionRule');
      else expect(text).toContain(`${s.stack.stackName}-action-run`);
    }
    const runStates = allows(runRole).filter((st) => actionsOf(st).some((a) => a.startsWith('states:') || a.startsWith('events:')));
    expect(runStates.flatMap(actionsOf)).toEqual(['states:StartExecution']);
    expect(runStates[0]!.Resource).toEqual({ Ref: logicalId(s.stack.saga.stateMachine) });
    // Functions: the run invokes the saga function, receipts and the connectors, never approvals.
    const invokes = allows(runRole).filter((st) => actionsOf(st).includes('lambda:InvokeFunction')).flatMap((st) => resourcesOf(st).map((r) => JSON.stringify(r)));
    expect(invokes.join()).not.toContain(logicalId(s.stack.functions.approvals.function));
    expect(invokes.join()).toContain(logicalId(s.stack.functions.saga.function));
  });

  it('keeps the states in the template, with the configured approval timeout', () => {
    const definition = JSON.parse(stateMachine().DefinitionString as string) as {
      StartAt: string;
      States: Record<string, { Type: string; Resource?: string; TimeoutSeconds?: number; Parameters?: Record<string, unknown> }>;
    };
    const tasks = Object.entries(definition.States).filter(([, st]) => st.Type === 'Task');
    expect(tasks.length).toBeGreaterThan(0);
    expect(definition.States[definition.StartAt]).toBeDefined();
    const approval = definition.States[APPROVAL_STATE]!;
    expect(approval.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    // approvalTimeoutSeconds, plus the approvals function's own Task time: the expiry it
    // stores (7200 s after it runs) always comes before the wait times out.
    expect(approval.TimeoutSeconds).toBe(7200 + 12 + TASK_TIMEOUT_MARGIN_SECONDS);
  });

  it('derives the execution and every Task timeout from config, each Task outlasting its Lambda', () => {
    type State = { Type: string; Resource?: string; TimeoutSeconds?: number; Parameters?: Record<string, unknown>; Branches?: { States: Record<string, State> }[] };
    const definition = JSON.parse(stateMachine().DefinitionString as string) as { TimeoutSeconds?: number; States: Record<string, State> };
    const expected = deriveSagaTimeouts(readAsl(), sagaTimeoutConfig(s.config));
    expect(definition.TimeoutSeconds).toBe(expected.executionSeconds);
    expect(definition.TimeoutSeconds).toBe(s.stack.saga.timeouts.executionSeconds);
    // The execution outlasts the approval wait plus the saga's worst-case run.
    expect(definition.TimeoutSeconds).toBe(7200 + expected.runSeconds);
    expect(definition.TimeoutSeconds).toBeLessThanOrEqual(STANDARD_MAX_EXECUTION_SECONDS);
    const tasks: [string, State][] = [];
    const walk = (states: Record<string, State>) => {
      for (const [name, st] of Object.entries(states)) {
        if (st.Type === 'Task') tasks.push([name, st]);
        for (const b of st.Branches ?? []) walk(b.States);
      }
    };
    walk(definition.States);
    expect(tasks.map(([n]) => n).sort()).toEqual(Object.keys(expected.tasks).sort());
    const lambdaTimeout = (fn: { function: { timeout?: { toSeconds(): number } } }) => fn.function.timeout!.toSeconds();
    for (const [name, task] of tasks) {
      const connectorCall = task.Parameters !== undefined && 'FunctionName.$' in task.Parameters;
      const seconds =
        name === APPROVAL_STATE ? s.config.approvalTimeoutSeconds + lambdaTimeout(s.stack.functions.approvals) + TASK_TIMEOUT_MARGIN_SECONDS
        : task.Resource === 'arn:aws:states:::states:startExecution.sync:2' ? EXPRESS_MAX_EXECUTION_SECONDS + TASK_TIMEOUT_MARGIN_SECONDS
        : connectorCall ? lambdaTimeout([...s.stack.connectorFunctions.values()][0]!) + TASK_TIMEOUT_MARGIN_SECONDS
        : lambdaTimeout(s.stack.functions.saga) + TASK_TIMEOUT_MARGIN_SECONDS;
      expect(task.TimeoutSeconds, name).toBe(seconds);
    }
    expect(Object.values(expected.tasks)).toEqual(expect.arrayContaining([12 + TASK_TIMEOUT_MARGIN_SECONDS]));
    // The run's Tasks, each outlasting its Lambda (the connector's 20 s here).
    const run = deriveSagaTimeouts(readAsl(ACTION_RUN_ASL), sagaTimeoutConfig(s.config), { express: true });
    expect(s.stack.saga.runTimeouts).toEqual(run);
    expect(Object.values(run.tasks)).toEqual(expect.arrayContaining([12 + TASK_TIMEOUT_MARGIN_SECONDS, 20 + TASK_TIMEOUT_MARGIN_SECONDS]));
  });

  it('substitutes the functions the ASL names and may invoke exactly those and the connectors', () => {
    const subs = stateMachine().DefinitionSubstitutions as Record<string, unknown>;
    expect(Object.keys(subs).sort()).toEqual([...s.stack.saga.invoked.keys(), 'RunWorkflowArn'].sort());
    expect(Object.keys(subs)).toEqual(expect.arrayContaining(['SagaFunctionArn', 'ApprovalsFunctionArn']));
    const runSubs = runMachine().DefinitionSubstitutions as Record<string, unknown>;
    expect(Object.keys(runSubs).sort()).toEqual([...s.stack.saga.runInvoked.keys(), 'SagaWorkflowArn'].sort());
    expect(Object.keys(runSubs)).toEqual(expect.arrayContaining(['SagaFunctionArn', 'ReceiptsFunctionArn']));
    const key = (r: unknown) => JSON.stringify(r);
    const check = (role: string, fns: { function: unknown }[]) => {
      const invokes = allows(role).filter((st) => actionsOf(st).includes('lambda:InvokeFunction'));
      expect(invokes).toHaveLength(1);
      expect(resourcesOf(invokes[0]!).map(key).sort()).toEqual([...new Set(fns.map((fn) => logicalId(fn.function as never)))].map((id) => key({ 'Fn::GetAtt': [id, 'Arn'] })).sort());
    };
    check(logicalId(s.stack.saga.stateMachine.role), [...s.stack.saga.invoked.values()]);
    check(logicalId(s.stack.saga.runStateMachine.role), [...s.stack.saga.runInvoked.values(), ...s.stack.connectorFunctions.values()]);
    // IssueGrant picks each step's connector function from this map.
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [roles.saga, 'Arn'] },
      Environment: { Variables: Match.objectLike({ CONNECTOR_FUNCTIONS: Match.anyValue() }) },
    });
  });

  it('lets intake start it (and fail a wait it cancels), approvals answer it, the expiry sweep fail a wait it cancels, the reconciler resume it, and nobody else', () => {
    const sm = logicalId(s.stack.saga.stateMachine);
    for (const [name, role] of Object.entries(roles)) {
      const actions = allows(role).flatMap(actionsOf).filter((a) => a.startsWith('states:'));
      if (name === 'intake') expect(actions.sort()).toEqual(['states:SendTaskFailure', 'states:StartExecution']);
      else if (name === 'approvals') expect(actions.sort()).toEqual(['states:SendTaskFailure', 'states:SendTaskSuccess']);
      // The expiry sweep fails the approval waits it cancels, like a cancel.
      else if (name === 'delegationExpiry') expect(actions).toEqual(['states:SendTaskFailure']);
      else if (name === 'reconcile') {
        // The schedule hands actions a dead workflow left unfinished to the saga: that one state machine only.
        expect(actions).toEqual(['states:StartExecution']);
        expect(allows(role).filter((st) => actionsOf(st).includes('states:StartExecution')).flatMap(resourcesOf)).toEqual([{ Ref: sm }]);
        s.template.hasResourceProperties('AWS::Lambda::Function', {
          Role: { 'Fn::GetAtt': [role, 'Arn'] },
          Environment: { Variables: Match.objectLike({ STATE_MACHINE_ARN: { Ref: sm } }) },
        });
      }
      else expect(actions, name).toEqual([]);
    }
    // Exactly the two workflows: the saga, and the Express run for unattended actions.
    const run = logicalId(s.stack.saga.runStateMachine);
    const starts = allows(roles.intake!).filter((st) => actionsOf(st).includes('states:StartExecution')).flatMap(resourcesOf);
    expect(starts.map((r) => JSON.stringify(r)).sort()).toEqual([{ Ref: sm }, { Ref: run }].map((r) => JSON.stringify(r)).sort());
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [roles.intake, 'Arn'] },
      Environment: { Variables: Match.objectLike({ STATE_MACHINE_ARN: { Ref: sm }, RUN_STATE_MACHINE_ARN: { Ref: run } }) },
    });
  });
});

describe('outputs', () => {
  it('exports the API URL, table, bucket, state machine and the console', () => {
    expect(Object.keys(s.template.findOutputs('*')).sort()).toEqual(
      ['AlarmTopicArn', 'ApiUrl', 'AuditBucketName', 'DashboardName', 'LedgerTableName', 'StateMachineArn', 'ConsoleUrl', 'ConsoleBucketName', 'ConsoleConfig'].sort(),
    );
  });
});

describe('audit vault: receipts function', () => {
  it('reads the ledger, writing only its rate-limit counters, and learns bucket, retention and lookback from the environment', () => {
    const statements = allows(roles.receipts!).filter((st) => actionsOf(st).some((a) => a.startsWith('dynamodb:')));
    const unconditioned = statements.filter((st) => st.Condition === undefined).flatMap(actionsOf);
    expect(unconditioned.sort()).toEqual(['dynamodb:GetItem', 'dynamodb:Query']);
    const rateOnly = statements.filter((st) => st.Condition !== undefined);
    expect(rateOnly.flatMap(actionsOf).sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:UpdateItem']);
    expect(rateOnly.map((st) => st.Condition)).toEqual([{ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['RATE#*'] } }]);
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('receipts'),
      Environment: {
        // As far back as an action can live: the saga's execution timeout, rounded up, plus a day.
        Variables: Match.objectLike({
          AUDIT_BUCKET: Match.anyValue(),
          AUDIT_RETENTION_DAYS: '400',
          AUDIT_DIGEST_LOOKBACK_DAYS: String(Math.ceil(s.stack.saga.timeouts.executionSeconds / 86_400) + 1),
          LEDGER_TABLE: Match.anyValue(),
        }),
      },
    });
  });

  it('writes a digest every hour', () => {
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      Targets: [Match.objectLike({ Input: JSON.stringify({ task: 'WriteDigest' }) })],
    });
  });

  it('tells the writer the schedule, which every digest declares as its heartbeat', () => {
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('receipts'),
      Environment: { Variables: Match.objectLike({ AUDIT_DIGEST_INTERVAL_SECONDS: '3600' }) },
    });
  });
});
