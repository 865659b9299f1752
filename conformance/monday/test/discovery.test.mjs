// init, connect and the discovery endpoints (spec §3.1–§3.6, §12.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentToolProtocolClient } from '@mondaydotcomorg/atp-client';
import { BASE, CLIENT_KEY, LIMITED_KEY, mark, since, calls, dumpWire, newClient, raw, recordingProviders } from './helpers.mjs';

test('init sends one POST /api/init with the tools and services; connect carries the session', async () => {
  const m = mark();
  const { providers } = recordingProviders();
  const client = new AgentToolProtocolClient({ baseUrl: BASE, headers: { 'X-API-Key': CLIENT_KEY }, serviceProviders: providers });
  const session = await client.init({ name: 'conformance' });
  assert.ok(session.clientId.length > 0 && session.token.length > 0);
  await client.init(); // memoised: sends nothing
  const conn = await client.connect();
  const log = since(m);
  assert.deepEqual(calls(log), ['POST /api/init', 'GET /api/definitions'], dumpWire(log));

  const [init, defs] = log;
  assert.equal(init.status, 200);
  assert.deepEqual(init.requestBody.services, { hasLLM: true, hasApproval: true, hasEmbedding: true, hasTools: true });
  assert.deepEqual(init.requestBody.tools.map((t) => t.name), ['getLocation', 'brokenTool', 'eraseDisk']);
  assert.match(init.responseBody.clientId, /^cli_[0-9a-f]{32}$/);
  const now = Date.now();
  assert.ok(init.responseBody.expiresAt > now && init.responseBody.tokenRotateAt > now, JSON.stringify(init.responseBody));
  assert.ok(init.responseBody.tokenRotateAt < init.responseBody.expiresAt);

  assert.ok(defs.url.endsWith('/api/definitions?'), defs.url); // the bare trailing "?"
  assert.equal(defs.requestHeaders['x-client-id'], session.clientId);
  assert.equal(defs.requestHeaders.authorization, `Bearer ${session.token}`);
  assert.equal(defs.requestHeaders['content-type'], 'application/json'); // on a GET
  assert.deepEqual(conn.apiGroups, ['counter', 'danger', 'math', 'secret']);
  assert.equal(typeof conn.serverVersion, 'string');

  const ts = client.getTypeDefinitions();
  assert.equal(typeof ts, 'string');
  for (const want of ['declare const api', 'math: {', 'add(params: math_add_Input)', 'interface math_add_Input', 'a: number;']) {
    assert.ok(ts.includes(want), `definitions lack ${want}:\n${ts}`);
  }
});

test('a limited key sees only its toolkits; apiGroups narrows further', async () => {
  const { client } = await newClient({ key: LIMITED_KEY });
  const conn = await client.connect();
  assert.deepEqual(conn.apiGroups, ['math']);
  assert.ok(!client.getTypeDefinitions().includes('reveal'));
  const results = await client.searchAPI('reveal the secret');
  assert.deepEqual(results, []);
  const r = await client.exploreAPI('/custom');
  assert.deepEqual(r.items.map((i) => i.name), ['math']);

  const { client: full } = await newClient();
  const narrowed = await full.connect({ apiGroups: ['math', 'danger'] });
  assert.deepEqual(narrowed.apiGroups, ['danger', 'math']);
  assert.ok(!full.getTypeDefinitions().includes('counter: {'));
});

test('getServerInfo, getRuntimeDefinitions, searchAPI, exploreAPI', async () => {
  const { client } = await newClient();
  const info = await client.getServerInfo();
  assert.equal(typeof info.version, 'string');
  assert.equal(info.capabilities.execution, true);
  assert.equal(info.capabilities.streaming, true);
  for (const k of ['maxTimeout', 'maxMemory', 'maxLLMCalls']) assert.equal(typeof info.limits[k], 'number');

  const rt = await client.getRuntimeDefinitions();
  for (const want of ['declare const atp: {', 'llm:', 'cache:', 'approval:', 'embedding:', 'export interface ApprovalResponse', 'interface SearchOptions', '@param', '@returns']) {
    assert.ok(rt.includes(want), `runtime lacks ${want}:\n${rt}`);
  }
  assert.ok(!rt.includes('progress:'), 'progress is only listed when asked for');
  assert.match(rt, /};\s*$/);
  const only = await client.getRuntimeDefinitions({ apis: ['progress', 'cache'] });
  assert.ok(only.indexOf('progress:') < only.indexOf('cache:') && !only.includes('llm:'), only);

  const results = await client.searchAPI('add');
  assert.ok(Array.isArray(results));
  assert.deepEqual(results[0], {
    apiGroup: 'math', functionName: 'add', description: 'Add two numbers',
    signature: 'add({ a: number, b: number })', relevanceScore: results[0].relevanceScore,
  });
  assert.ok(results[0].relevanceScore > 0);
  const scoped = await client.searchAPI('delete everything', { apiGroups: ['math'] });
  assert.deepEqual(scoped, []);
  const blocked = await client.searchAPI('delete everything', { toolRules: { blockOperationTypes: ['destructive'] } });
  assert.ok(!blocked.some((r) => r.functionName === 'wipe'));

  const root = await client.exploreAPI('/');
  assert.equal(root.type, 'directory');
  assert.deepEqual(root.items, [{ name: 'custom', type: 'directory', description: root.items[0].description }]);
  const groups = await client.exploreAPI('/custom');
  assert.deepEqual(groups.items.map((i) => i.name), ['counter', 'danger', 'math', 'secret']);
  const math = await client.exploreAPI('/custom/math');
  assert.deepEqual(math.items.map((i) => `${i.type}:${i.name}`), ['function:add', 'function:explode', 'function:multiply', 'function:whoami']);
  const add = await client.exploreAPI('/custom/math/add');
  assert.equal(add.type, 'function');
  assert.equal(add.group, 'math');
  assert.equal(add.name, 'add');
  assert.match(add.definition, /^async function api\.math\.add\(params: \{ a: number; b: number \}\)/);
  assert.equal(add.inputSchema.type, 'object');
  await assert.rejects(client.exploreAPI('/custom/nope'), /Explore failed: 404/);
});

test('runtime definitions follow the session services (§3.3)', async () => {
  const client = new AgentToolProtocolClient({
    baseUrl: BASE, headers: { 'X-API-Key': CLIENT_KEY },
    serviceProviders: { approval: { request: async () => ({ approved: true, timestamp: Date.now() }) } },
  });
  await client.init();
  const rt = await client.getRuntimeDefinitions();
  assert.ok(rt.includes('approval:') && rt.includes('cache:'), rt);
  assert.ok(!rt.includes('llm:') && !rt.includes('embedding:'), rt);
  // Without a session: cache only.
  const anon = await raw('GET', '/api/runtime');
  assert.equal(anon.status, 200);
  assert.match(anon.headers.get('content-type'), /^text\/plain/);
  assert.ok(anon.text.includes('cache:') && !anon.text.includes('llm:'));
});

test('GET /api/info is open and GET routes accept a JSON Content-Type and a bare "?"', async () => {
  const r = await raw('GET', '/api/info?');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /application\/json/);
  assert.equal(r.json.capabilities.execution, true);
  const s = await raw('GET', '/api/search?query=multiply', { headers: { 'X-API-Key': CLIENT_KEY } });
  assert.equal(s.status, 200);
  assert.equal(s.json.results[0].functionName, 'multiply');
});
