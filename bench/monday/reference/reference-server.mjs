// The reference monday ATP server, @mondaydotcomorg/atp-server 0.19.17, for
// the side-by-side benchmark (../bench.mjs starts it; it is not a server to
// deploy). It registers the same server tool as the toolkit bench.mjs
// creates on atp-server — api.math.add({a, b}) → {sum: a + b} — serves the
// library's own request handler on a free loopback port, and prints one
// line of JSON on stdout once it listens:
//
//   {"listening":"127.0.0.1:<port>"}
//
// It stops on SIGTERM or SIGINT, and when its parent closes its stdin, so a
// crashed runner never leaves it behind.
//
//   npm ci && node reference-server.mjs     # from bench/monday/reference
//
// The defaults of the library are kept (30 s timeout, 128 MB, 10 LLM calls,
// in-memory cache, logger at info); NODE_ENV=production turns its pretty
// printer off, as in a deployment. ATP_JWT_SECRET is taken from the
// environment, else a random one is made (the library's fixed default is
// insecure and warns).
import { createServer as createHTTPServer } from 'node:http';
import { randomBytes } from 'node:crypto';

process.env.NODE_ENV ||= 'production';
process.env.ATP_JWT_SECRET ??= randomBytes(32).toString('hex');

const { createServer } = await import('@mondaydotcomorg/atp-server');

const atp = createServer({ logger: process.env.ATP_REFERENCE_LOG_LEVEL ?? 'info' });
atp.tool('add', {
  group: 'math',
  groupDescription: 'Arithmetic helpers',
  description: 'Add two numbers',
  input: { a: 'number', b: 'number' },
  handler: async (input) => ({ sum: input.a + input.b }),
});
await atp.start();

const handle = atp.handler();
const http = createHTTPServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('reference-server: unhandled error', err);
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: 'Internal server error' }));
  });
});
await new Promise((ok, ko) => {
  http.once('error', ko);
  http.listen(0, '127.0.0.1', ok);
});
process.stdout.write(JSON.stringify({ listening: `127.0.0.1:${http.address().port}` }) + '\n');

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  http.closeAllConnections?.();
  http.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The runner holds our stdin open; EOF means it is gone.
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
