// Runs the monday conformance suite: builds atp-server (or takes
// ATP_SERVER_BIN), starts it on a free loopback port with a fresh embedded
// database, provisions toolkits and client keys through the admin API,
// runs `node --test` over test/*.test.mjs against it, and stops it.
//
//   npm ci && npm test                          # from conformance/monday
//   ATP_SERVER_BIN=/path/to/atp-server npm test # skip the go build
//
// Exit status: that of the test run (non-zero on any failure). The
// server's log is printed when a test fails.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'atp-monday-conformance-'));

function fail(msg) {
  console.error(`conformance: ${msg}`);
  process.exitCode = 1;
}

// ---- the binary ----
let bin = process.env.ATP_SERVER_BIN ? resolve(process.env.ATP_SERVER_BIN) : '';
if (!bin) {
  bin = join(work, 'atp-server');
  console.log('conformance: go build ./cmd/atp-server');
  const b = spawnSync('go', ['build', '-o', bin, './cmd/atp-server'], { cwd: repo, stdio: 'inherit' });
  if (b.status !== 0) {
    fail('go build failed');
    process.exit(1);
  }
}

// ---- an upstream for http tools: counts calls, so that the suite can
// check that a server tool runs once per logical call across pauses ----
const hits = new Map();
const upstream = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const m = url.pathname.match(/^\/hit\/([\w-]+)$/);
  if (m) {
    const n = (hits.get(m[1]) ?? 0) + 1;
    hits.set(m[1], n);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ id: m[1], count: n }));
    return;
  }
  const c = url.pathname.match(/^\/count\/([\w-]+)$/);
  if (c) {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ count: hits.get(c[1]) ?? 0 }));
    return;
  }
  res.writeHead(404).end();
});
await new Promise((ok) => upstream.listen(0, '127.0.0.1', ok));
const upstreamURL = `http://127.0.0.1:${upstream.address().port}`;

// ---- the server ----
const adminKey = 'adm-' + randomBytes(24).toString('hex');
const prefix = process.env.ATP_MONDAY_PREFIX ?? '';
const serverEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME ?? work,
  ATP_ADDR: '127.0.0.1:0',
  ATP_DATA_DIR: join(work, 'data'),
  ATP_ADMIN_KEY: adminKey,
  ATP_LOG_FORMAT: 'json',
  ATP_LOG_LEVEL: process.env.ATP_LOG_LEVEL ?? 'info',
  ATP_HTTP_ALLOW_PRIVATE: 'true', // the counting upstream is on loopback
};
if (prefix) serverEnv.ATP_MONDAY_PREFIX = prefix;
const server = spawn(bin, [], { env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] });
let serverLog = '';
let exited = null;
server.on('exit', (code, signal) => { exited = { code, signal }; });
// listening resolves with the address the server logs once it listens.
const listening = new Promise((ok, ko) => {
  const timer = setTimeout(() => ko(new Error('atp-server did not log "listening" within 60 s')), 60_000);
  server.stderr.on('data', (chunk) => {
    serverLog += chunk;
    for (const line of serverLog.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const rec = JSON.parse(line);
        if (rec.msg === 'listening' && rec.addr) {
          clearTimeout(timer);
          ok(rec.addr);
          return;
        }
      } catch { /* a partial line */ }
    }
  });
  server.stdout.on('data', (c) => { serverLog += c; });
  server.on('exit', () => { clearTimeout(timer); ko(new Error('atp-server exited before it listened')); });
});

async function stopServer() {
  if (exited) return;
  server.kill('SIGTERM');
  await new Promise((ok) => {
    const t = setTimeout(() => { server.kill('SIGKILL'); ok(); }, 10_000);
    server.on('exit', () => { clearTimeout(t); ok(); });
  });
}

try {
  const origin = `http://${await listening}`;
  const base = origin + prefix;
  // Readiness: GET /api/info is the protocol's own probe (§2).
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`${base}/api/info`);
      if (r.ok) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('GET /api/info never answered 200');
    await new Promise((ok) => setTimeout(ok, 100));
  }

  // ---- provisioning through the admin API ----
  const admin = async (method, path, body) => {
    const r = await fetch(`${origin}/admin/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`admin ${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const obj = (properties, required = Object.keys(properties)) => ({ type: 'object', properties, required });
  const js = (code) => ({ kind: 'js', code });
  await admin('POST', '/toolkits', {
    id: 'math', name: 'Math', description: 'Arithmetic helpers',
    tools: [
      { name: 'add', description: 'Add two numbers', input_schema: obj({ a: { type: 'number' }, b: { type: 'number' } }),
        executor: js('return {sum: input.a + input.b};') },
      { name: 'multiply', description: 'Multiply two numbers', input_schema: obj({ a: { type: 'number' }, b: { type: 'number' } }),
        executor: js('return input.a * input.b;') },
      { name: 'explode', description: 'Always fails', input_schema: obj({}),
        executor: js("throw new Error('tool exploded');") },
      { name: 'whoami', description: 'The end user the call acts for (X-User-ID)', input_schema: obj({}),
        executor: js('return ctx.external_user_id;') },
    ],
  });
  await admin('POST', '/toolkits', {
    id: 'danger', name: 'Danger', description: 'Tools that ask for approval first',
    tools: [
      { name: 'wipe', description: 'Delete everything', input_schema: obj({ what: { type: 'string' } }),
        annotations: { operation_type: 'destructive' }, executor: js('return {wiped: input.what};') },
      { name: 'peek', description: 'Read a secret', input_schema: obj({}),
        annotations: { sensitivity: 'sensitive' }, executor: js('return {secret: 42};') },
    ],
  });
  await admin('POST', '/toolkits', {
    id: 'counter', name: 'Counter', description: 'Counts its calls on an upstream',
    tools: [
      { name: 'hit', description: 'Count one call', input_schema: obj({ id: { type: 'string' } }),
        executor: { kind: 'http', method: 'GET', url: `${upstreamURL}/hit/{id}` } },
    ],
  });
  await admin('POST', '/toolkits', {
    id: 'secret', name: 'Secret', description: 'Only for the full key',
    tools: [{ name: 'reveal', description: 'Reveal the secret', input_schema: obj({}), executor: js('return 7;') }],
  });
  const fullKey = await admin('POST', '/api-keys', { name: 'conformance', kind: 'client' });
  const limitedKey = await admin('POST', '/api-keys', { name: 'conformance-limited', kind: 'client', toolkits: ['math'] });

  // ---- the tests ----
  const files = readdirSync(join(here, 'test')).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join('test', f));
  const only = process.argv.slice(2);
  // Asynchronous: this process keeps serving the upstream and draining the
  // server's log while the tests run.
  const t = await new Promise((ok) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', ...(only.length ? only : files)], {
      cwd: here,
      stdio: 'inherit',
      env: {
        ...process.env,
        ATP_BASE: base,
        ATP_ORIGIN: origin,
        ATP_ADMIN_KEY: adminKey,
        ATP_CLIENT_KEY: fullKey.key,
        ATP_LIMITED_KEY: limitedKey.key,
        ATP_UPSTREAM: upstreamURL,
      },
    });
    child.on('exit', (status, signal) => ok({ status, signal }));
  });
  if (t.status !== 0) {
    fail(`tests failed (exit ${t.status ?? t.signal})`);
    console.error('---- atp-server log (last 20000 bytes) ----\n' + serverLog.slice(-20000));
  }
} catch (err) {
  fail(err.stack ?? String(err));
  console.error('---- atp-server log ----\n' + serverLog.slice(-20000));
} finally {
  await stopServer();
  upstream.close();
  if (exited && exited.code !== 0 && exited.signal !== 'SIGTERM' && exited.code !== null) {
    fail(`atp-server exited with ${exited.code}`);
  }
  rmSync(work, { recursive: true, force: true });
}
