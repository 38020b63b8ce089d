/**
 * The event feed publisher (DESIGN §4): a CURVE Publisher; each durable event goes out as two frames,
 * the event type (subscribers filter on it) and the JSON {seq, type, time, data}. A subscriber that was
 * away replays what it missed with events.since(seq); sequence numbers make gaps and repeats visible.
 */
import { Publisher } from 'zeromq';
import type { CustodyEvent } from '../service/events.js';
import { SendQueue } from './send-queue.js';

export const EVENTS_ZAP_DOMAIN = 'custody-events';

export class EventPublisher {
  private readonly socket: Publisher;
  private readonly queue: SendQueue;

  constructor(
    private readonly endpoint: string,
    serverSecretKey: string,
  ) {
    this.socket = new Publisher({ curveServer: true, curveSecretKey: serverSecretKey, zapDomain: EVENTS_ZAP_DOMAIN, linger: 0, sendHighWaterMark: 100_000 });
    this.queue = new SendQueue(this.socket);
  }

  async start(): Promise<string> {
    await this.socket.bind(this.endpoint);
    return this.socket.lastEndpoint ?? this.endpoint;
  }

  publish(events: readonly CustodyEvent[]): void {
    for (const e of events) this.queue.push([e.type, JSON.stringify(e)]);
  }

  async close(): Promise<void> {
    if (this.socket.closed) return;
    await this.queue.idle();
    this.socket.close();
  }
}
