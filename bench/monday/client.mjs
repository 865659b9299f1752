// The client side of the monday benchmark, shared by bench.mjs and the
// worker threads of workload (a) (a-worker.mjs): the same client code,
// hooks and scripts against both servers.
import { AgentToolProtocolClient } from '@mondaydotcomorg/atp-client';

const llm = {
  call: async (prompt) => `ok:${prompt}`,
  extract: async () => ({}),
  classify: async (_text, categories) => categories[0],
};

// newClient inits a client. While client.benchTag is set, each of its
// requests carries X-Request-ID <benchTag>.<n>, which atp-server honours
// and logs with the duration its HTTP layer measured (the reference ignores
// the header). Both servers get the same hook.
export async function newClient(target) {
  let n = 0;
  const hooks = {
    preRequest: async (ctx) => ({
      headers: client.benchTag ? { ...ctx.currentHeaders, 'X-Request-ID': `${client.benchTag}.${n++}` } : ctx.currentHeaders,
    }),
  };
  const client = new AgentToolProtocolClient({
    baseUrl: target.base,
    headers: target.headers,
    serviceProviders: { llm },
    hooks,
  });
  client.benchTag = '';
  await client.init({ name: 'bench' });
  return client;
}

// tagged runs one execution with its requests tagged bench-<phase>-<i>
// when it is measured.
export async function tagged(client, tag, fn) {
  client.benchTag = tag;
  try {
    return await fn();
  } finally {
    client.benchTag = '';
  }
}

export const CODE_A = 'const r = await api.math.add({ a: 1, b: 2 });\nreturn r.sum;';
export const CODE_B = "let n = 0;\nfor (let i = 0; i < 10; i++) {\n  const s = await atp.llm.call({ prompt: 'p' + i });\n  if (s === 'ok:p' + i) n++;\n}\nreturn n;";
export const CODE_C = 'return 1';

export function check(res, want) {
  if (res?.status !== 'completed') {
    return `status ${res?.status}: ${JSON.stringify(res?.error ?? res).slice(0, 300)}`;
  }
  if (res.result !== want) return `result ${JSON.stringify(res.result)}, want ${want}`;
  return '';
}

export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
export const sortNum = (xs) => Float64Array.from(xs).sort();

// runLoop runs n iterations of fn over c workers, each with its own
// client, stopping early at the deadline. Returns latencies (ms), errors,
// wall time (ms) and the first error.
export async function runLoop(clients, n, fn, deadlineMs, measured) {
  let next = 0;
  const lat = [];
  let errors = 0;
  let firstError = '';
  const deadline = Date.now() + deadlineMs;
  const t0 = performance.now();
  await Promise.all(clients.map(async (client) => {
    for (;;) {
      const i = next++;
      if (i >= n || Date.now() > deadline) return;
      const s = performance.now();
      let err;
      try {
        err = await fn(client, i, measured);
      } catch (e) {
        err = e?.message ?? String(e);
      }
      lat.push(performance.now() - s);
      if (err) {
        errors++;
        firstError ||= err;
      }
    }
  }));
  return { lat: sortNum(lat), errors, firstError, wall: performance.now() - t0, done: lat.length };
}
