import { type Duration, Lazy, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AnyPrincipal, Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { type RotationSchedule, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SecretNames } from '../../lambdas/ports/secrets';
import type { AirlockFunction } from './airlock-function';
import { EnvNames } from '../../lambdas/composition/env';

/** Env var with the grant-signing key's secret name, in every function that may read it. */
export const GRANT_KEY_SECRET_ENV = EnvNames.grantKeySecret;
/** Env var with the connector's vendor-credential secret name. */
export const VENDOR_SECRET_ENV = EnvNames.vendorSecret;
/** Env var with the page-cursor key's secret name (read by lambdas/composition/aws.ts). */
export const CURSOR_KEY_SECRET_ENV = EnvNames.cursorKeySecret;

/**
 * What a Secrets Manager rotation function calls on the secret it rotates: read and describe
 * it, put the pending version, move the staging labels. No GetRandomPassword: the function
 * generates keys with node:crypto.
 */
export const ROTATION_ACTIONS = [
  'secretsmanager:DescribeSecret',
  'secretsmanager:GetSecretValue',
  'secretsmanager:PutSecretValue',
  'secretsmanager:UpdateSecretVersionStage',
] as const;

/** Props of {@link AirlockSecrets}. */
export interface AirlockSecretsProps {
  /** Connector names; one vendor-credential secret each. */
  readonly connectors: readonly string[];
  readonly removalPolicy: RemovalPolicy;
}

/**
 * A secret whose readers are closed: the identity policy of each reader allows it, and the
 * secret's own resource policy denies GetSecretValue to every other principal in the
 * account, so a broad `secretsmanager:*` role elsewhere still cannot read it.
 */
class ClosedSecret {
  private readonly readers: AirlockFunction[] = [];

  constructor(
    readonly secret: Secret,
    private readonly name: string,
  ) {
    secret.addToResourcePolicy(
      new PolicyStatement({
        sid: 'OnlyNamedReaders',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['secretsmanager:GetSecretValue'],
        resources: ['*'],
        conditions: {
          StringNotEquals: {
            'aws:PrincipalArn': Lazy.list({ produce: () => this.readers.map((r) => r.role.roleArn) }),
          },
        },
      }),
    );
  }

  grantRead(fn: AirlockFunction, envName?: string): void {
    this.readers.push(fn);
    this.secret.grantRead(fn.role);
    if (envName) fn.addEnvironment(envName, this.name);
  }

  /** Lets a rotation function run the rotation protocol on this secret (and read it past the deny). */
  grantRotation(fn: AirlockFunction): void {
    this.readers.push(fn);
    fn.role.addToPrincipalPolicy(new PolicyStatement({ actions: [...ROTATION_ACTIONS], resources: [this.secret.secretArn] }));
  }
}

/**
 * Secrets Manager: the grant-signing key, the page-cursor key and one vendor credential per connector
 * (`SecretNames` from lambdas/ports/secrets). Values are generated at deploy time; vendor
 * credentials are replaced by the operator with `put-secret-value`.
 */
export class AirlockSecrets extends Construct {
  private readonly grantKey: ClosedSecret;
  private readonly cursorKey: ClosedSecret;
  private readonly vendor = new Map<string, ClosedSecret>();

  constructor(scope: Construct, id: string, props: AirlockSecretsProps) {
    super(scope, id);

    const grantKey = new Secret(this, 'GrantSigningKey', {
      secretName: SecretNames.grantSigningKey,
      description: 'Airlock grant-signing key set (Ed25519 JWKs) for single-use step grants; rotated by the rotation function',
      // CloudFormation cannot make a JWK: this placeholder is replaced by the rotation that
      // the rotation schedule starts as soon as it is created (see rotateGrantSigningKey).
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: props.removalPolicy,
    });
    this.grantKey = new ClosedSecret(grantKey, SecretNames.grantSigningKey);

    const cursorKey = new Secret(this, 'CursorKey', {
      secretName: SecretNames.cursorKey,
      description: 'Airlock page-cursor key (HMAC-SHA-256 over each cursor, its caller and its filter)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: props.removalPolicy,
    });
    Validations.of(cursorKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The cursor key only authenticates page cursors, which live for one listing: replacing it (put-secret-value) costs clients one 400 and a restarted listing. A rotation function would add a Lambda for no protection a manual replacement lacks.',
    });
    this.cursorKey = new ClosedSecret(cursorKey, SecretNames.cursorKey);

    for (const name of props.connectors) {
      const secret = new Secret(this, `Vendor-${name}`, {
        secretName: SecretNames.vendorCredential(name),
        description: `Vendor credential of the ${name} connector (replace with put-secret-value)`,
        generateSecretString: { passwordLength: 32, excludePunctuation: true },
        removalPolicy: props.removalPolicy,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'Vendor credentials are issued and rotated by the vendor, not by AWS; Secrets Manager cannot mint a new one. Operators rotate them with put-secret-value.',
      });
      this.vendor.set(name, new ClosedSecret(secret, SecretNames.vendorCredential(name)));
    }
  }

  /**
   * Lets a function read the grant-signing key. Minting functions (named in config
   * `grantKeyReaders`) sign grants; connectors verify every grant they receive, so they
   * read it too.
   */
  grantSigningKeyRead(fn: AirlockFunction): void {
    this.grantKey.grantRead(fn, GRANT_KEY_SECRET_ENV);
  }

  /** Lets an API function issue and check page cursors. */
  grantCursorKeyRead(fn: AirlockFunction): void {
    this.cursorKey.grantRead(fn, CURSOR_KEY_SECRET_ENV);
  }

  /**
   * Rotates the grant-signing key with `fn` (lambdas/keys/handler.ts and adapters/aws/secret-rotation.ts) every
   * `automaticallyAfter`, starting right after deployment (which also replaces the
   * deploy-time placeholder by a real key set).
   */
  rotateGrantSigningKey(fn: AirlockFunction, automaticallyAfter: Duration): RotationSchedule {
    this.grantKey.grantRotation(fn);
    // Secrets Manager invokes the function, from this account only.
    fn.function.addPermission('InvokedBySecretsManager', {
      principal: new ServicePrincipal('secretsmanager.amazonaws.com'),
      sourceAccount: Stack.of(this).account,
    });
    // Handed to the schedule as a reference: given the function itself, RotationSchedule also
    // grants secretsmanager:GetRandomPassword on "*" and a resolvable-ARN variant of the
    // statement above; this function needs neither.
    const target = LambdaFunction.fromFunctionAttributes(this, 'GrantKeyRotator', {
      functionArn: fn.function.functionArn,
      sameEnvironment: true,
      skipPermissions: true,
    });
    const schedule = this.grantKey.secret.addRotationSchedule('Rotation', {
      rotationLambda: target,
      automaticallyAfter,
      rotateImmediatelyOnUpdate: true,
    });
    // Secrets Manager checks it may invoke the function when the schedule is created.
    schedule.node.addDependency(fn.function.permissionsNode.findChild('InvokedBySecretsManager'));
    return schedule;
  }

  /** Lets exactly one connector function read its own vendor credential. */
  grantVendorCredentialRead(connector: string, fn: AirlockFunction): void {
    const secret = this.vendor.get(connector);
    if (!secret) throw new Error(`No vendor secret for connector ${connector}`);
    secret.grantRead(fn, VENDOR_SECRET_ENV);
  }

  /**
   * Lets the reconcile function read the vendor credentials of the connectors it asks (it
   * finds each by its well-known name, so no env var: one function, many connectors).
   */
  grantVendorCredentialsRead(connectors: readonly string[], fn: AirlockFunction): void {
    for (const connector of connectors) {
      const secret = this.vendor.get(connector);
      if (!secret) throw new Error(`No vendor secret for connector ${connector}`);
      secret.grantRead(fn);
    }
  }

  /** The grant-signing key secret. */
  get grantSigningKey(): Secret {
    return this.grantKey.secret;
  }

  /** The page-cursor key secret. */
  get cursorKeySecret(): Secret {
    return this.cursorKey.secret;
  }

  /** The vendor-credential secret of a connector. */
  vendorCredential(connector: string): Secret {
    const secret = this.vendor.get(connector);
    if (!secret) throw new Error(`No vendor secret for connector ${connector}`);
    return secret.secret;
  }
}
