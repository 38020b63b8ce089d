/**
 * Wakes the follower when bitcoind announces a block on its ZMQ `hashblock` topic (bitcoind
 * -zmqpubhashblock=ENDPOINT), so a new block is seen in milliseconds instead of at the next poll. Only a
 * hint: the follower still reads everything over RPC and keeps polling, so a lost message costs nothing.
 */
import { Subscriber } from 'zeromq';

export class BlockNotifier {
  private readonly socket = new Subscriber({ linger: 0 });
  private running: Promise<void> | undefined;

  constructor(
    private readonly endpoint: string,
    private readonly onBlock: () => void,
  ) {}

  start(): void {
    this.socket.connect(this.endpoint);
    this.socket.subscribe('hashblock');
    this.running = (async () => {
      try {
        for await (const frames of this.socket) {
          if (frames[0]?.toString() === 'hashblock') this.onBlock();
        }
      } catch {
        // closed
      }
    })();
  }

  async close(): Promise<void> {
    this.socket.close();
    await this.running;
  }
}
