// Shared by the test files: the server's coordinates (from run.mjs), a
// wire log of every fetch the client makes, and a client whose providers
// record what they are asked (spec §12.2).
import assert from 'node:assert/strict';
import { AgentToolProtocolClient } from '@mondaydotcomorg/atp-client';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suite through run.mjs (npm test)`);
  return v;
}

export const BASE = env('ATP_BASE');
export const ORIGIN = env('ATP_ORIGIN');
export const ADMIN_KEY = env('ATP_ADMIN_KEY');
export const CLIENT_KEY = env('ATP_CLIENT_KEY');
export const LIMITED_KEY = env('ATP_LIMITED_KEY');
export const UPSTREAM = env('ATP_UPSTREAM');

// ---- wire log (§12.1) ----

const wire = [];
const realFetch = globalThis.fetch;

function headersObject(h) {
  if (!h) return {};
  if (h instanceof Headers) return Object.fromEntries(h.entries());
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), String(v)]));
}

// Every fetch of this process goes through the log: the client's, and
// the raw ones of the negative tests.
globalThis.fetch = async (input, init = {}) => {
  const url = typeof input === 'string' ? input : input.url;
  const entry = {
    method: (init.method ?? 'GET').toUpperCase(),
    url,
    path: new URL(url).pathname.slice(new URL(BASE).pathname.replace(/\/$/, '').length),
    requestHeaders: headersObject(init.headers),
    requestBody: typeof init.body === 'string' ? safeJSON(init.body) : undefined,
    started: Date.now(),
  };
  wire.push(entry);
  const res = await realFetch(input, init);
  entry.status = res.status;
  entry.responseHeaders = Object.fromEntries(res.headers.entries());
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('event-stream')) {
    const text = await res.clone().text();
    entry.responseBody = type.includes('json') ? safeJSON(text) : text;
  }
  return res;
};

function safeJSON(s) {
  try { return JSON.parse(s); } catch { return s; }
}

// mark returns a position in the wire log; since(mark) the entries after it.
export function mark() { return wire.length; }
export function since(m) { return wire.slice(m); }

// calls summarises entries as "METHOD /path" lines, with a resume's body
// kind: "POST /api/resume (batch 3)" or "POST /api/resume (single)".
export function calls(entries) {
  return entries.map((e) => {
    const p = e.path.replace(/^\/api\/resume\/.+$/, '/api/resume');
    if (p !== '/api/resume') return `${e.method} ${p}`;
    const b = e.requestBody ?? {};
    return Array.isArray(b.results) ? `${e.method} ${p} (batch ${b.results.length})` : `${e.method} ${p} (single)`;
  });
}

export function dumpWire(entries) {
  return JSON.stringify(entries.map(({ method, path, status, requestBody, responseBody }) =>
    ({ method, path, status, requestBody, responseBody })), null, 2);
}

// ---- clients ----

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// recordingProviders are §12.2's providers; `seen` records every call.
export function recordingProviders({ llmDelay = 0 } = {}) {
  const seen = { llm: [], approval: [], embed: [], tools: [], llmStarts: [] };
  const providers = {
    llm: {
      call: async (prompt, options) => {
        seen.llmStarts.push(Date.now());
        seen.llm.push({ op: 'call', prompt, options });
        if (llmDelay) await sleep(llmDelay);
        if (prompt === 'fail') throw new Error('llm is down');
        return `LLM(${prompt})`;
      },
      extract: async (prompt, schema, options) => {
        seen.llm.push({ op: 'extract', prompt, schema, options });
        return { name: 'Alice' };
      },
      classify: async (text, categories, options) => {
        seen.llm.push({ op: 'classify', text, categories, options });
        return categories[0];
      },
    },
    approval: {
      request: async (message, context) => {
        seen.approval.push({ message, context });
        if (message === 'explode') throw new Error('approver is down');
        return { approved: message !== 'deny' && !String(message).includes('peek'), response: 'ok', timestamp: Date.now() };
      },
    },
    embedding: {
      embed: async (text) => {
        seen.embed.push(text);
        return [String(text).length, 1, 0.5];
      },
    },
    tools: [
      {
        name: 'getLocation', namespace: 'client', description: 'Where the user is',
        inputSchema: { type: 'object', properties: { precise: { type: 'boolean' } } },
        handler: async (input) => { seen.tools.push({ name: 'getLocation', input }); return { city: 'TLV', input }; },
      },
      {
        name: 'brokenTool', description: 'Always throws',
        inputSchema: { type: 'object', properties: {} },
        handler: async () => { seen.tools.push({ name: 'brokenTool' }); throw new Error('client tool failed'); },
      },
      {
        name: 'eraseDisk', namespace: 'client', description: 'Needs approval',
        inputSchema: { type: 'object', properties: {} },
        metadata: { operationType: 'destructive' },
        handler: async () => { seen.tools.push({ name: 'eraseDisk' }); return 'erased'; },
      },
    ],
  };
  return { providers, seen };
}

// newClient inits a client with the full key (or opts.key) and the
// recording providers (or opts.providers, which may be {} for none).
export async function newClient(opts = {}) {
  const rec = recordingProviders(opts);
  const client = new AgentToolProtocolClient({
    baseUrl: BASE,
    headers: { 'X-API-Key': opts.key ?? CLIENT_KEY, ...(opts.headers ?? {}) },
    serviceProviders: opts.providers ?? rec.providers,
  });
  await client.init({ name: 'conformance', version: '1' });
  return { client, seen: rec.seen };
}

// ---- raw HTTP ----

export async function raw(method, path, { headers = {}, body } = {}) {
  const res = await fetch(BASE + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

// rawInit opens a session by hand and returns {clientId, token}.
export async function rawInit(key = CLIENT_KEY, body = { tools: [], services: { hasLLM: true, hasApproval: true, hasEmbedding: true, hasTools: false } }) {
  const r = await raw('POST', '/api/init', { headers: { 'X-API-Key': key }, body });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

export function authHeaders(session) {
  return { 'X-Client-ID': session.clientId, Authorization: `Bearer ${session.token}` };
}

// assertErrorBody checks the protocol's error envelope (§2).
export function assertErrorBody(r, status, fragment) {
  assert.equal(r.status, status, `want ${status}, got ${r.status}: ${r.text}`);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof r.json?.error, 'string', r.text);
  assert.equal(typeof r.json?.requestId, 'string', r.text);
  assert.ok(r.json.requestId.length > 0);
  if (fragment) assert.ok(r.json.error.includes(fragment), `error ${JSON.stringify(r.json.error)} lacks ${JSON.stringify(fragment)}`);
}

// assertStats checks that a result carries the four numeric stats (§5.1).
export function assertResultShape(result) {
  assert.equal(typeof result.executionId, 'string');
  assert.ok(result.executionId.length > 0);
  assert.equal(typeof result.status, 'string');
  for (const k of ['duration', 'memoryUsed', 'llmCallsCount', 'approvalCallsCount']) {
    assert.equal(typeof result.stats?.[k], 'number', `stats.${k} in ${JSON.stringify(result)}`);
  }
}

export async function admin(method, path, body) {
  const r = await fetch(`${ORIGIN}/admin/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`admin ${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function upstreamCount(id) {
  const r = await fetch(`${UPSTREAM}/count/${id}`);
  return (await r.json()).count;
}
