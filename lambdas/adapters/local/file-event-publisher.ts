import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EventPublishError, type EventPublisher, type PublishedEvent } from '../../ports/events';

/**
 * The local stand-in for EventBridge: one JSON line per event in `<AIRLOCK_HOME>/events.log`,
 * shaped like an EventBridge event (`source`, `detail-type`, `detail`), so `tail -f` shows
 * what a rule would route to Slack or email.
 */

/** File name under the state directory. */
export const EVENTS_LOG_FILE = 'events.log';

export class FileEventPublisher implements EventPublisher {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, EVENTS_LOG_FILE);
  }

  async publish(event: PublishedEvent): Promise<void> {
    const line = JSON.stringify({
      source: 'airlock',
      'detail-type': event.type,
      time: (event.time ?? new Date()).toISOString(),
      resources: event.resources ?? [],
      detail: event.detail,
    });
    try {
      // One appendFile per line: O_APPEND keeps concurrent lines whole. 0600 like the rest of the state dir.
      await appendFile(this.path, `${line}\n`, { mode: 0o600 });
    } catch (cause) {
      throw new EventPublishError(`Could not append ${event.type} to ${this.path}`, { cause });
    }
  }
}
