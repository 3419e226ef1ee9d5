import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { EventPublishError, type EventPublisher, type PublishedEvent } from '../../ports/events';

/** An EventBridge client, made with the adapter (the composition loads both on first use, with only the commands used). */
export function eventBridgeClient(): EventBridgeClient {
  return new EventBridgeClient({});
}

/**
 * Publishes Airlock notifications with EventBridge PutEvents. PutEvents reports per-entry
 * failures in a 200 response (`FailedEntryCount`, `ErrorCode`), so a success status alone
 * does not mean delivery: the entry is checked too.
 */

/** `source` of every Airlock event; rules match on it. */
export const EVENT_SOURCE = 'airlock';

export interface EventBridgePublisherOptions {
  /** Bus name or ARN; the account's `default` bus when omitted. */
  eventBusName?: string;
  client?: EventBridgeClient;
}

export class EventBridgePublisher implements EventPublisher {
  private readonly client: EventBridgeClient;
  private readonly bus: string;

  constructor(options: EventBridgePublisherOptions = {}) {
    this.client = options.client ?? new EventBridgeClient({});
    this.bus = options.eventBusName ?? 'default';
  }

  async publish(event: PublishedEvent): Promise<void> {
    let out;
    try {
      out = await this.client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.bus,
              Source: EVENT_SOURCE,
              DetailType: event.type,
              Detail: JSON.stringify(event.detail),
              ...(event.resources?.length ? { Resources: event.resources } : {}),
              ...(event.time ? { Time: event.time } : {}),
            },
          ],
        }),
      );
    } catch (cause) {
      throw new EventPublishError(`PutEvents failed for ${event.type}`, { cause });
    }
    const entry = out.Entries?.[0];
    if ((out.FailedEntryCount ?? 0) > 0 || !entry?.EventId) {
      throw new EventPublishError(`EventBridge rejected ${event.type}: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim());
    }
  }
}
