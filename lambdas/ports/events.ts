/**
 * Notifications teams route to Slack, email or a ticket queue: EventBridge in AWS, a JSON
 * lines file locally. Best effort by contract: the ledger, not the event, is the record, so
 * callers log a failed publish and carry on.
 */

/** One notification. `detail` must never hold a task token, grant, credential or PII. */
export interface PublishedEvent {
  /** e.g. `airlock.approval.requested`; the EventBridge DetailType. */
  type: string;
  detail: Record<string, unknown>;
  /** ARNs or ids the event is about (EventBridge `Resources`). */
  resources?: string[];
  time?: Date;
}

export interface EventPublisher {
  publish(event: PublishedEvent): Promise<void>;
}

/** The event could not be delivered (a rejected entry or a failed call). */
export class EventPublishError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventPublishError';
  }
}
