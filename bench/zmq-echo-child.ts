/**
 * Child process of the zmq.curve.roundtrip64 baseline: a bare CURVE Router that echoes every message,
 * replies through the daemon's own SendQueue (one send in flight, DESIGN §11). Reads its server secret
 * key (Z85) from the first line of stdin, binds a free loopback port, prints the endpoint, and runs
 * until stdin closes or SIGTERM.
 */
import { Router } from 'zeromq';
import { SendQueue } from '../src/rpc/send-queue.js';

const secret = await new Promise<string>((resolve) => {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    buf += d;
    const nl = buf.indexOf('\n');
    if (nl >= 0) resolve(buf.slice(0, nl).trim());
  });
});

const sock = new Router({ curveServer: true, curveSecretKey: secret, linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
await sock.bind('tcp://127.0.0.1:*');
const replies = new SendQueue(sock);
const stop = (): void => sock.close();
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
process.stdout.write(`${sock.lastEndpoint ?? ''}\n`);
try {
  for await (const msg of sock) replies.push(msg);
} catch (err) {
  if (!sock.closed) throw err;
}
