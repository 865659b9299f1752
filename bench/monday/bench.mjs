// The monday side-by-side benchmark. In one run it:
//
//   1. builds atp-server (or takes ATP_SERVER_BIN) and starts it on a free
//      loopback port with a fresh embedded database in a temp dir, then
//      provisions, through the admin API, the toolkit `math` (js tool `add`)
//      and a client key — as conformance/monday/run.mjs does;
//   2. runs the workloads below against it and stops it; then starts the
//      reference @mondaydotcomorg/atp-server 0.19.17
//      (reference/reference-server.mjs, same tool api.math.add) on a free
//      loopback port, runs the same workloads and stops it — one server at
//      a time, so that the idle one takes no CPU;
//   3. the workloads, with the same client code (the published
//      @mondaydotcomorg/atp-client 0.19.20) against both:
//        (a) executions/s and p50/p99 of a script that calls one server tool,
//            16 executions in flight: first with every client on this
//            thread, then spread over BENCH_A_THREADS worker threads
//            (a-worker.mjs), since one Node thread of the client tops out
//            near 1,400 executions/s;
//        (b) wall time of a script with 10 sequential atp.llm.call pauses
//            (the client's LLM provider answers at once), one at a time;
//        (c) latency of `return 1`, one at a time;
//      each after a warm-up, with a fixed number of iterations and a time cap,
//      and measured again (at most twice) when other processes kept more
//      than 0.15 cores busy meanwhile. For atp-server it also reports the
//      server-side time of each workload, from its access log: the client
//      tags its requests with X-Request-ID and the HTTP layer logs the
//      duration it measured for each;
//   4. prints a markdown table with both columns and the ratios, writes it to
//      bench/results/monday-<time>.md (or BENCH_OUT), and stops both servers
//      (also on failure and on Ctrl-C).
//
//   npm ci && (cd reference && npm ci) && node bench.mjs   # from bench/monday
//   ATP_SERVER_BIN=/path/to/atp-server node bench.mjs      # skip the go build
//
// Knobs (environment): BENCH_A_N (default 2000 executions), BENCH_A_C (16),
// BENCH_A_THREADS (2; 0 or 1 skips the threaded run of (a)),
// BENCH_B_N (30 runs), BENCH_C_N (500 runs), BENCH_PHASE_SECONDS (cap per
// workload and server, default 120), BENCH_RUN_SECONDS (cap of the whole
// run, default 900), BENCH_RETRIES (measurements repeated under other
// load, default 2), BENCH_COMMIT (the label of the binary in the report;
// default: git rev-parse of this tree), BENCH_ONLY=atp|reference,
// BENCH_REFERENCE_NODE_ENV (default production).
//
// Exit status: 0 when every workload ran without errors on both servers;
// 1 otherwise. It only ever talks to 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg, totalmem, release } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { newClient, tagged, check, quantile, sortNum, runLoop, CODE_A, CODE_B, CODE_C } from './client.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'atp-bench-monday-'));

const intEnv = (name, def, zero = false) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < (zero ? 0 : 1)) throw new Error(`${name}=${v}: want a ${zero ? 'non-negative' : 'positive'} integer`);
  return n;
};
const N_A = intEnv('BENCH_A_N', 2000);
const C_A = intEnv('BENCH_A_C', 16);
// (a) is measured twice: the client on one thread, then spread over
// BENCH_A_THREADS worker threads (0 or 1: not at all).
const T_A = intEnv('BENCH_A_THREADS', 2, true);
const N_B = intEnv('BENCH_B_N', 30);
const N_C = intEnv('BENCH_C_N', 500);
const PHASE_MS = intEnv('BENCH_PHASE_SECONDS', 120) * 1000;
const ONLY = process.env.BENCH_ONLY ?? '';
// A measurement during which other processes kept more than OTHER_MAX
// cores busy is repeated, at most RETRIES times.
const RETRIES = intEnv('BENCH_RETRIES', 2, true);
const OTHER_MAX = 0.15;
// production turns the reference's pretty log printer off, as in a
// deployment; BENCH_REFERENCE_NODE_ENV=development keeps it.
const REF_NODE_ENV = process.env.BENCH_REFERENCE_NODE_ENV || 'production';
// The whole run is bounded: past this, everything is stopped.
const RUN_MS = intEnv('BENCH_RUN_SECONDS', 900) * 1000;

const log = (...a) => console.error('bench:', ...a);

// ---- child processes: every one we start is stopped on any exit ----
const children = new Set();
function track(child, name) {
  children.add(child);
  child.benchName = name;
  child.exited = null;
  child.on('exit', (code, signal) => {
    child.exited = { code, signal };
    children.delete(child);
  });
  return child;
}
async function stop(child) {
  if (!child || child.exited) return;
  child.kill('SIGTERM');
  await new Promise((ok) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); ok(); }, 10_000);
    child.once('exit', () => { clearTimeout(t); ok(); });
  });
}
function killAllNow() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', () => {
  killAllNow();
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping the servers`);
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  log(`the run took more than ${RUN_MS / 1000} s: stopping`);
  process.exit(1);
}, RUN_MS);
watchdog.unref();

// waitForLine polls a log file until pick(line) returns a value.
async function waitForLine(file, child, pick, what, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const v = pick(JSON.parse(line));
        if (v) return v;
      } catch { /* a partial line */ }
    }
    if (child.exited) throw new Error(`${child.benchName} exited (${JSON.stringify(child.exited)}) before ${what}:\n${tail(file)}`);
    if (Date.now() > deadline) throw new Error(`${child.benchName}: no ${what} within ${ms / 1000} s:\n${tail(file)}`);
    await sleep(50);
  }
}
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const tail = (file, n = 4000) => {
  try { return readFileSync(file, 'utf8').slice(-n); } catch { return ''; }
};

async function waitForInfo(base) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`${base}/api/info`);
      if (r.ok) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`GET ${base}/api/info never answered 200`);
    await sleep(50);
  }
}

// ---- atp-server ----
function buildServer() {
  if (process.env.ATP_SERVER_BIN) return resolve(process.env.ATP_SERVER_BIN);
  const bin = join(work, 'atp-server');
  log('go build ./cmd/atp-server (CGO_ENABLED=0 -trimpath, as make build)');
  const b = spawnSync('go', ['build', '-trimpath', '-o', bin, './cmd/atp-server'], {
    cwd: repo, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' },
  });
  if (b.status !== 0) throw new Error('go build failed');
  return bin;
}

async function startATPServer(bin) {
  const adminKey = 'adm-' + randomBytes(24).toString('hex');
  const logFile = join(work, 'atp-server.log');
  const fd = openSync(logFile, 'w');
  const child = track(spawn(bin, [], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? work,
      ATP_ADDR: '127.0.0.1:0',
      ATP_DATA_DIR: join(work, 'data'),
      ATP_ADMIN_KEY: adminKey,
      ATP_LOG_FORMAT: 'json',
      ATP_LOG_LEVEL: 'info', // the default level; the access log gives (c) its server-side time
    },
    stdio: ['ignore', fd, fd],
  }), 'atp-server');
  closeSync(fd);
  const addr = await waitForLine(logFile, child, (r) => r.msg === 'listening' && r.addr, '"listening"');
  const origin = `http://${addr}`;
  await waitForInfo(origin);

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
  await admin('POST', '/toolkits', {
    id: 'math', name: 'Math', description: 'Arithmetic helpers',
    tools: [{
      name: 'add', description: 'Add two numbers',
      input_schema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] },
      executor: { kind: 'js', code: 'return {sum: input.a + input.b};' },
    }],
  });
  const key = await admin('POST', '/api-keys', { name: 'bench', kind: 'client' });
  return { name: 'atp-server', child, logFile, base: origin, headers: { 'X-API-Key': key.key } };
}

// ---- the reference ----
async function startReference() {
  const dir = join(here, 'reference');
  const logFile = join(work, 'reference.log');
  const fd = openSync(logFile, 'w');
  // stdin is a pipe we never write: the server stops when it closes.
  const child = track(spawn(process.execPath, ['reference-server.mjs'], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME ?? work, NODE_ENV: REF_NODE_ENV },
    stdio: ['pipe', fd, fd],
  }), 'reference');
  closeSync(fd);
  const addr = await waitForLine(logFile, child, (r) => r.listening, '{"listening"}');
  const base = `http://${addr}`;
  await waitForInfo(base);
  return { name: 'reference', child, logFile, base, headers: {} };
}

// ---- the client, the same for both: client.mjs ----

// cpuSeconds is the user+system CPU time of a process so far (Linux /proc).
const CLK_TCK = Number(sh('getconf', ['CLK_TCK'])) || 100;
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return NaN;
  }
}

// machineBusySeconds is the CPU time all processes of the machine have used
// so far (Linux /proc/stat: all but idle and iowait).
function machineBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return (user + nice + system + irq + softirq + (steal || 0)) / CLK_TCK;
  } catch {
    return NaN;
  }
}

// threads starts count worker threads (a-worker.mjs) sharing clients
// clients of target between them; run(n, attempt) splits n executions
// between them and merges their results, timed here as one loop.
async function threads(target, count, clients) {
  const workers = [];
  for (let k = 0; k < count; k++) {
    const share = Math.floor(clients / count) + (k < clients % count ? 1 : 0);
    const w = new Worker(new URL('./a-worker.mjs', import.meta.url), {
      workerData: { target: { base: target.base, headers: target.headers }, clients: share },
    });
    await new Promise((ok, ko) => {
      w.once('message', ok);
      w.once('error', ko);
    });
    workers.push(w);
  }
  const run = async (n, attempt) => {
    const t0 = performance.now();
    const parts = await Promise.all(workers.map((w, k) => new Promise((ok, ko) => {
      w.once('message', ok);
      w.once('error', ko);
      const share = Math.floor(n / count) + (k < n % count ? 1 : 0);
      w.postMessage({ n: share, attempt, offset: k * n, deadlineMs: PHASE_MS });
    })));
    return {
      lat: sortNum(parts.flatMap((p) => [...p.lat])),
      errors: parts.reduce((s, p) => s + p.errors, 0),
      firstError: parts.find((p) => p.firstError)?.firstError ?? '',
      wall: performance.now() - t0,
      done: parts.reduce((s, p) => s + p.done, 0),
    };
  };
  const close = () => Promise.all(workers.map((w) => w.terminate()));
  return { run, close };
}

async function measure(target) {
  const out = { name: target.name };
  // phase warms up, then measures; when other processes used more than
  // OTHER_MAX cores meanwhile, it measures again (at most RETRIES times)
  // and keeps the attempt with the least other load. run(n, attempt) runs
  // n executions (attempt 0 is the warm-up) and returns runLoop's result.
  const phase = async (label, run, warm, n) => {
    const w = await run(warm, 0);
    if (w.errors) log(`${target.name} ${label} warm-up: ${w.errors} errors, first: ${w.firstError}`);
    let best;
    for (let attempt = 1; attempt <= 1 + RETRIES; attempt++) {
      const s0 = cpuSeconds(target.child.pid);
      const m0 = machineBusySeconds();
      const c0 = process.cpuUsage();
      const r = await run(n, attempt);
      const c1 = process.cpuUsage(c0);
      // Cores busy while measuring: the server's, this process's (the
      // client's), and everything else's on the machine (other load).
      const secs = r.wall / 1000;
      r.serverCores = (cpuSeconds(target.child.pid) - s0) / secs;
      r.clientCores = (c1.user + c1.system) / 1e6 / secs;
      r.otherCores = Math.max(0, (machineBusySeconds() - m0) / secs - r.serverCores - r.clientCores);
      r.attempt = attempt;
      r.n = n;
      log(`${target.name} ${label} #${attempt}: ${r.done}/${n} in ${secs.toFixed(2)} s, p50 ${quantile(r.lat, 0.5).toFixed(2)} ms, ${r.errors} errors${r.errors ? ', first: ' + r.firstError : ''}; CPU cores: server ${r.serverCores.toFixed(2)}, client ${r.clientCores.toFixed(2)}, other processes ${r.otherCores.toFixed(2)}`);
      if (!best || r.otherCores < best.otherCores) best = r;
      if (r.otherCores <= OTHER_MAX || r.errors) break;
    }
    return best;
  };

  const loop = (clients, fn) => (n, attempt) => runLoop(clients, n, fn, PHASE_MS, attempt);

  // (a) one server tool per execution, C_A in flight, the client on this
  // thread.
  const clientsA = await Promise.all(Array.from({ length: C_A }, () => newClient(target)));
  out.a = await phase('(a) tool call', loop(clientsA,
    async (c, i, m) => check(await tagged(c, m ? `bench-a${m}-${i}` : '', () => c.execute(CODE_A)), 3)),
  Math.max(200, C_A * 10), N_A);

  // (a) again with the same C_A in flight spread over T_A worker threads,
  // so that the client is not the limit.
  if (T_A > 1) {
    const pool = await threads(target, T_A, C_A);
    try {
      out.t = await phase(`(a) tool call, client on ${T_A} threads`, pool.run, Math.max(200, C_A * 10), N_A);
    } finally {
      await pool.close();
    }
  }

  // (b) ten sequential LLM pauses, one execution at a time.
  const clientB = await newClient(target);
  out.b = await phase('(b) 10 llm pauses', loop([clientB],
    async (c, i, m) => check(await tagged(c, m ? `bench-b${m}-${i}` : '', () => c.execute(CODE_B)), 10)), 3, N_B);

  // (c) return 1, one at a time.
  const clientC = await newClient(target);
  const durations = [];
  out.c = await phase('(c) return 1', loop([clientC], async (c, i, m) => {
    const res = await tagged(c, m ? `bench-c${m}-${i}` : '', () => c.execute(CODE_C));
    if (m) (durations[m] ??= []).push(res?.stats?.duration);
    return check(res, 1);
  }), 50, N_C);
  out.c.statsDuration = sortNum(durations[out.c.attempt].filter((d) => typeof d === 'number'));
  return out;
}

// serverSide reads atp-server's access log: for (a) and (c) the duration
// (ms) of each measured request, for (b) the sum over the 11 requests
// (execute and 10 resumes) of each measured run; of the attempt kept.
function serverSide(logFile, kept) {
  const req = { a: [], t: [], b: [], c: [] };
  const runB = new Map();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"bench-')) continue;
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      continue; // not a record
    }
    const m = /^bench-([atbc])(\d+)-(\d+)\.\d+$/.exec(r.request_id ?? '');
    if (!m || r.msg !== 'http request' || typeof r.duration !== 'number') continue;
    if (!kept[m[1]] || Number(m[2]) !== kept[m[1]].attempt) continue;
    m.splice(2, 1);
    const ms = r.duration / 1e6;
    req[m[1]].push(ms);
    if (m[1] === 'b') runB.set(m[2], (runB.get(m[2]) ?? 0) + ms);
  }
  return { a: sortNum(req.a), t: sortNum(req.t), b: sortNum([...runB.values()]), c: sortNum(req.c), bRequests: req.b.length };
}

// ---- the machine and the report ----
function sh(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: repo, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}
function machine() {
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no']) ? ' (with uncommitted changes)' : '';
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: process.env.BENCH_COMMIT || (sh('git', ['rev-parse', '--short', 'HEAD']) || 'unknown') + dirty,
    nproc: sh('nproc', []) || String(cpus().length),
    cpu: (sh('sh', ['-c', "lscpu | grep 'Model name' | sed 's/.*: *//'"]) || cpus()[0]?.model || 'unknown'),
    mem: `${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    os: `Linux ${release()}`,
    go: sh('go', ['version']).replace(/^go version /, ''),
    node: process.version,
    binary: process.env.ATP_SERVER_BIN ? `ATP_SERVER_BIN=${process.env.ATP_SERVER_BIN}` : 'built from the working tree',
  };
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(1)}×` : 'n/a');

function report(m, la0, la1, atp, ref, ss) {
  const rate = (r) => (r ? (r.done - r.errors) / (r.wall / 1000) : NaN);
  const p = (r, q) => (r ? quantile(r.lat, q) : NaN);
  const mean = (r) => (r && r.lat.length ? r.lat.reduce((s, x) => s + x, 0) / r.lat.length : NaN);
  const cnt = (r) => (r ? `${r.done}${r.done < r.n ? ` of ${r.n} (time cap)` : ''}, ${r.errors} errors${r.attempt > 1 ? `; attempt ${r.attempt}` : ''}` : 'not run');
  const cores = (r) => (r ? `${f2(r.serverCores)} / ${f2(r.clientCores)} / ${f2(r.otherCores)}` : 'n/a');
  const sq = (xs, q) => (xs && xs.length ? quantile(xs, q) : NaN);
  const others = (r) => (r ? Math.max(r.a.otherCores, r.t?.otherCores ?? 0, r.b.otherCores, r.c.otherCores) : NaN);
  const rows = [
    ['(a) tool call, c=16: executions/s', f1(rate(atp?.a)), f1(rate(ref?.a)), ratio(rate(atp?.a) / rate(ref?.a)), '≥ 10×'],
    ['(a) p50 latency, ms', f2(p(atp?.a, 0.5)), f2(p(ref?.a, 0.5)), ratio(p(ref?.a, 0.5) / p(atp?.a, 0.5)), ''],
    ['(a) p99 latency, ms', f2(p(atp?.a, 0.99)), f2(p(ref?.a, 0.99)), ratio(p(ref?.a, 0.99) / p(atp?.a, 0.99)), ''],
    ['(a) p50 / p99 server-side per request, ms', `${f3(sq(ss.a, 0.5))} / ${f3(sq(ss.a, 0.99))}`, 'not measured', '', ''],
    ['(a) executions measured', cnt(atp?.a), cnt(ref?.a), '', ''],
    ['(a) CPU cores busy: server / client / other processes', cores(atp?.a), cores(ref?.a), '', ''],
    ...(T_A > 1 ? [
      [`(a) the same, client on ${T_A} threads: executions/s`, f1(rate(atp?.t)), f1(rate(ref?.t)), ratio(rate(atp?.t) / rate(ref?.t)), '≥ 10×'],
      ['(a) p50 / p99 latency, ms', `${f2(p(atp?.t, 0.5))} / ${f2(p(atp?.t, 0.99))}`, `${f2(p(ref?.t, 0.5))} / ${f2(p(ref?.t, 0.99))}`, ratio(p(ref?.t, 0.5) / p(atp?.t, 0.5)), ''],
      ['(a) p50 / p99 server-side per request, ms', `${f3(sq(ss.t, 0.5))} / ${f3(sq(ss.t, 0.99))}`, 'not measured', '', ''],
      ['(a) executions measured', cnt(atp?.t), cnt(ref?.t), '', ''],
      ['(a) CPU cores busy: server / client / other processes', cores(atp?.t), cores(ref?.t), '', ''],
    ] : []),
    ['(b) 10 llm pauses: wall time p50, ms', f2(p(atp?.b, 0.5)), f2(p(ref?.b, 0.5)), ratio(p(ref?.b, 0.5) / p(atp?.b, 0.5)), '≥ 10×'],
    ['(b) wall time mean / p99, ms', `${f2(mean(atp?.b))} / ${f2(p(atp?.b, 0.99))}`, `${f2(mean(ref?.b))} / ${f2(p(ref?.b, 0.99))}`, '', ''],
    ['(b) p50 server-side per run (11 requests), ms', f3(sq(ss.b, 0.5)), 'not measured', '', ''],
    ['(b) runs measured', cnt(atp?.b), cnt(ref?.b), '', ''],
    ['(c) return 1: p50 at the client, ms', f2(p(atp?.c, 0.5)), f2(p(ref?.c, 0.5)), ratio(p(ref?.c, 0.5) / p(atp?.c, 0.5)), ''],
    ['(c) p99 at the client, ms', f2(p(atp?.c, 0.99)), f2(p(ref?.c, 0.99)), ratio(p(ref?.c, 0.99) / p(atp?.c, 0.99)), ''],
    ['(c) p50 server-side (HTTP handler), ms', f3(sq(ss.c, 0.5)), 'not measured', '', '< 1 ms'],
    ['(c) p99 server-side (HTTP handler), ms', f3(sq(ss.c, 0.99)), 'not measured', '', ''],
    ['(c) p50 of stats.duration (execution), ms', f2(atp ? quantile(atp.c.statsDuration, 0.5) : NaN), f2(ref ? quantile(ref.c.statsDuration, 0.5) : NaN), '', ''],
    ['(c) runs measured', cnt(atp?.c), cnt(ref?.c), '', ''],
    ['other processes, most cores busy in any workload', f2(others(atp)), f2(others(ref)), '', '≈ 0 for a clean run'],
  ];
  const lines = [
    `### monday side by side (${m.date})`,
    '',
    `Commit ${m.commit}; ${m.nproc} cores (${m.cpu}), ${m.mem}, ${m.os}; ${m.go}; Node ${m.node}; atp-server ${m.binary}.`,
    `Client @mondaydotcomorg/atp-client 0.19.20 in one Node process (${T_A > 1 ? `(a) on one thread, then on ${T_A} worker threads` : 'one thread'}); reference @mondaydotcomorg/atp-server 0.19.17 (NODE_ENV=${REF_NODE_ENV}, logger info); atp-server log level info. One server at a time.`,
    `Load average (1/5/15 min) before: ${la0.map((x) => x.toFixed(2)).join(' ')}; after: ${la1.map((x) => x.toFixed(2)).join(' ')}.`,
    '',
    '| workload | atp-server | reference 0.19.17 | atp-server vs reference | target |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ];
  return lines.join('\n');
}

// ---- the run ----
let failed = false;
try {
  const m = machine();
  const la0 = loadavg();
  const bin = ONLY === 'reference' ? '' : buildServer();
  let atp, ref;
  let ss = {};
  // One server at a time runs the workloads; the other is not started yet
  // or already stopped, so that it takes no CPU.
  if (ONLY !== 'reference') {
    const t = await startATPServer(bin);
    log(`atp-server at ${t.base}`);
    try {
      atp = await measure(t);
    } finally {
      await stop(t.child);
    }
    ss = serverSide(t.logFile, atp);
    for (const k of ['a', 't', 'b', 'c']) {
      if (atp[k] && ss[k].length !== atp[k].done) log(`(${k}): ${ss[k].length} server-side figures in the access log for ${atp[k].done} measured executions`);
    }
    if (ss.bRequests !== atp.b.done * 11) log(`(b): ${ss.bRequests} tagged requests, want ${atp.b.done * 11} (execute + 10 resumes per run)`);
  }
  if (ONLY !== 'atp') {
    const t = await startReference();
    log(`reference at ${t.base}`);
    try {
      ref = await measure(t);
    } finally {
      await stop(t.child);
    }
  }
  for (const r of [atp, ref]) {
    for (const k of ['a', 't', 'b', 'c']) {
      if (r && r[k] && (r[k].errors || r[k].done < r[k].n)) failed = true;
    }
  }
  const table = report(m, la0, loadavg(), atp, ref, ss);
  const outFile = process.env.BENCH_OUT
    ? resolve(process.env.BENCH_OUT)
    : join(here, '..', 'results', `monday-${m.date.replace(/[:]/g, '')}.md`);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, table);
  process.stdout.write(table);
  log(`written to ${outFile}`);
} catch (err) {
  failed = true;
  log(err?.stack ?? String(err));
  for (const f of ['atp-server.log', 'reference.log']) {
    const t = tail(join(work, f));
    if (t) console.error(`---- ${f} (last 4000 bytes) ----\n${t}`);
  }
} finally {
  for (const c of [...children]) await stop(c);
}
process.exit(failed ? 1 : 0);
