import { LogFormatter, LogItem, Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { ConstructorOptions, LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { EmfMetrics } from '../adapters/aws/emf-metrics';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '../observability/catalog';
import { maskSecrets, type Logger, type LogLevel } from '../shared/logger';
import { mapStacksOnDemand } from './source-maps';

/**
 * The Powertools for AWS Lambda instances every function shares (one of each per process, as
 * in the Powertools examples' `commons/powertools`), and the adapter that gives domain code
 * its small Logger interface over Powertools Logger.
 */

// Every function's bundle holds this module, so `import.meta.url` here is the bundle's own
// URL: its stacks map to the sources through the map beside it, read on the first error.
mapStacksOnDemand(import.meta.url);

/** The service name on every log line and trace segment. */
export const SERVICE_NAME = METRICS_SERVICE;

/** The field a cheap child logger passes its Lambda context in (see childOf); never written as is. */
const CHILD_CONTEXT = '__airlockChildContext';

/** A Lambda context's fields on a log line. */
function contextLine(functionName: string, requestId: string, coldStart: boolean): LogAttributes {
  return { function_name: functionName, function_request_id: requestId, cold_start: coldStart };
}

/**
 * Log lines as Airlock has always written them (`level`, `time`, `message`, then fields),
 * plus the Lambda context and X-Ray trace id Powertools adds, with every field passed through
 * {@link maskSecrets}: the secret masking lives in the formatter, so no call site can skip it.
 */
export class MaskingLogFormatter extends LogFormatter {
  formatAttributes(attributes: UnformattedAttributes, all: LogAttributes): LogItem {
    const context = attributes.lambdaContext;
    // A child's line carries the context it was made in (false: none), not the logger's current one.
    const { [CHILD_CONTEXT]: childContext, ...additional } = all;
    const contextFields =
      childContext !== undefined
        ? ((childContext || {}) as LogAttributes)
        : context
          ? contextLine(context.functionName, context.awsRequestId, context.coldStart)
          : {};
    const base: LogAttributes = {
      level: attributes.logLevel.toLowerCase(),
      time: attributes.timestamp.toISOString(),
      message: attributes.message,
      service: attributes.serviceName,
      ...contextFields,
      ...(attributes.xRayTraceId ? { xray_trace_id: attributes.xRayTraceId } : {}),
    };
    return new LogItem({ attributes: { ...base, ...(maskSecrets(additional) as LogAttributes) } });
  }
}

/** Writes each formatted line to `sink` instead of stdout (tests, the demo's stderr). */
class SinkLogger extends PowertoolsLogger {
  // Not a #private or initialised field: Powertools may print from inside super(), before
  // any field of this class exists (those early lines go to stdout).
  declare private sink: ((line: string) => void) | undefined;

  /** The Lambda context last added, as the formatter writes it: cheap children keep the one they were made in. */
  declare contextFields: LogAttributes | undefined;

  constructor(options: ConstructorOptions, sink?: (line: string) => void) {
    super(options);
    this.sink = sink;
  }

  override addContext(context: Context): void {
    // What super() records as cold_start (it flips the flag as it reads it).
    const coldStart = this.coldStart;
    super.addContext(context);
    this.contextFields = contextLine(context.functionName, context.awsRequestId, coldStart);
  }

  protected override printLog(logLevel: number, log: LogItem): void {
    if (!this.sink) return super.printLog(logLevel, log);
    this.sink(JSON.stringify(log.getAttributes()));
  }

  protected override createLogger(options?: ConstructorOptions): PowertoolsLogger {
    return new SinkLogger(options ?? {}, this.sink);
  }
}

const LEVELS: Record<LogLevel, ConstructorOptions['logLevel']> = {
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  silent: 'SILENT',
};

/** Domain-facing view of a Powertools logger. */
function wrap(pt: SinkLogger): Logger & { powertools: PowertoolsLogger } {
  return {
    powertools: pt,
    debug: (message, fields) => (fields ? pt.debug(message, fields) : pt.debug(message)),
    info: (message, fields) => (fields ? pt.info(message, fields) : pt.info(message)),
    warn: (message, fields) => (fields ? pt.warn(message, fields) : pt.warn(message)),
    error: (message, fields) => (fields ? pt.error(message, fields) : pt.error(message)),
    child: (fields) => childOf(pt, fields),
  };
}

/**
 * A child: the parent Powertools logger with `fields` on every line (a line's own fields win).
 * Not `createChild`, which builds a whole Powertools Logger (options, environment, console)
 * per call: one per request and per saga step, it was ~3 % of the local control plane's CPU
 * under the chaos storm. The parent's level, context and formatter (the masking) still apply.
 */
function childOf(pt: SinkLogger, own: Record<string, unknown>): Logger {
  // Locally one process logger serves every invocation: a child keeps the context it was made
  // in (the formatter lets these fields win over the logger's current context).
  const fields = CHILD_CONTEXT in own ? own : { [CHILD_CONTEXT]: pt.contextFields ?? false, ...own };
  const withFields = (extra?: Record<string, unknown>) => (extra ? { ...fields, ...extra } : fields);
  return {
    debug: (message, extra) => pt.debug(message, withFields(extra)),
    info: (message, extra) => pt.info(message, withFields(extra)),
    warn: (message, extra) => pt.warn(message, withFields(extra)),
    error: (message, extra) => pt.error(message, withFields(extra)),
    child: (more) => childOf(pt, { ...fields, ...more }),
  };
}

export interface LoggerOptions {
  /** Threshold; from POWERTOOLS_LOG_LEVEL / LOG_LEVEL (Powertools' rules), else info. */
  level?: LogLevel;
  /** Where lines go; stdout (as Lambda expects) unless given. */
  sink?: (line: string) => void;
  /** Fields on every line. */
  base?: Record<string, unknown>;
}

/** A Powertools logger with Airlock's formatter, behind the domain Logger interface. */
export function createLogger(options: LoggerOptions = {}): Logger & { powertools: PowertoolsLogger } {
  const pt = new SinkLogger(
    {
      serviceName: SERVICE_NAME,
      logFormatter: new MaskingLogFormatter(),
      ...(options.level ? { logLevel: LEVELS[options.level] } : {}),
      ...(options.base ? { persistentKeys: options.base } : {}),
    },
    options.sink,
  );
  return wrap(pt);
}

/** The process logger (one per cold start); middlewares add the Lambda context to it. */
export const logger = createLogger();

/** A logger that writes nothing; for tests and for callers that print their own output. */
export const silentLogger: Logger = createLogger({ level: 'silent' });

/**
 * The process tracer. In Lambda with active tracing it records a segment per invocation and
 * a subsegment per SDK call (every client goes through `tracer.captureAWSv3Client`); outside
 * Lambda it is off and costs nothing.
 */
export const tracer = new Tracer({ serviceName: SERVICE_NAME });

/**
 * What a trace may be annotated with: the action id (an opaque id, also on the receipt), the
 * tool and the outcome. Never the principal or anything from the request body: annotations
 * are indexed and readable by everyone with X-Ray access.
 */
export interface TraceAnnotations {
  actionId?: string;
  tool?: string;
  outcome?: string;
}

/** Annotations that find one action's traces in X-Ray (`annotation.actionId = "act_…"`). */
export function annotate(annotations: TraceAnnotations): void {
  if (!tracer.isTracingEnabled()) return;
  for (const key of ['actionId', 'tool', 'outcome'] as const) {
    const value = annotations[key];
    if (value !== undefined) tracer.putAnnotation(key, value.slice(0, 200));
  }
}

/**
 * The process metrics (Powertools Metrics, CloudWatch EMF in the `Airlock` namespace). The AWS
 * composition hands it to domain code through the Metrics port; {@link publishMetrics} flushes
 * it once per invocation.
 */
export const metrics = new EmfMetrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });

/** Publishes the invocation's metrics after the handler, also when it throws. */
export function publishMetrics<TEvent, TResult>(): middy.MiddlewareObj<TEvent, TResult> {
  return { after: () => metrics.flush(), onError: () => metrics.flush() };
}
