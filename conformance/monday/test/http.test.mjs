// The HTTP surface with raw fetch: auth, error envelopes, statuses, token
// refresh, revoked keys, streaming (spec §2, §3, §14).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentToolProtocolClient } from '@mondaydotcomorg/atp-client';
import { BASE, CLIENT_KEY, admin, raw, rawInit, authHeaders, assertErrorBody, newClient } from './helpers.mjs';

test('init: 401 without a key or with a bad one, 403 for a non-client key; Bearer works on init', async () => {
  assertErrorBody(await raw('POST', '/api/init', { body: { tools: [] } }), 401);
  assertErrorBody(await raw('POST', '/api/init', { headers: { 'X-API-Key': 'atp_cli_wrong' }, body: { tools: [] } }), 401);
  const tk = await admin('POST', '/api-keys', { name: 'worker', kind: 'toolkit', toolkit_id: 'math' });
  assertErrorBody(await raw('POST', '/api/init', { headers: { 'X-API-Key': tk.key }, body: { tools: [] } }), 403);
  const ok = await raw('POST', '/api/init', { headers: { Authorization: `Bearer ${CLIENT_KEY}` }, body: { tools: [] } });
  assert.equal(ok.status, 200, ok.text);
  assert.match(ok.json.clientId, /^cli_/);
});

test('a client whose key is only in Authorization works: the key is read on init alone (§2)', async () => {
  const client = new AgentToolProtocolClient({ baseUrl: BASE, headers: { Authorization: `Bearer ${CLIENT_KEY}` } });
  await client.init();
  const conn = await client.connect();
  assert.ok(conn.apiGroups.includes('math'));
  const r = await client.execute('return await api.math.multiply({a: 2, b: 5})');
  assert.equal(r.result, 10, JSON.stringify(r));
});

test('init validates the body: 400 with the JSON envelope (§3.1, §14 #13)', async () => {
  const h = { 'X-API-Key': CLIENT_KEY };
  assertErrorBody(await raw('POST', '/api/init', { headers: h, body: { tools: [{ name: 'x', inputSchema: { type: 'object' } }] } }), 400,
    "Invalid tool definition for 'x': description is required");
  assertErrorBody(await raw('POST', '/api/init', { headers: h, body: { tools: [{ name: 'x', description: 'd' }] } }), 400, "Invalid tool definition for 'x'");
  assertErrorBody(await raw('POST', '/api/init', { headers: h, body: '' }), 400);
  assertErrorBody(await raw('POST', '/api/init', { headers: h, body: '{"tools": [' }), 400, 'Invalid JSON');
});

test('execute: 401 without a bearer, 403 with a bogus one, and never a token for an unverified caller (§3.7, §14 #1)', async () => {
  const s = await rawInit();
  const body = { code: 'return 1' };
  const missing = await raw('POST', '/api/execute', { headers: { 'X-Client-ID': s.clientId }, body });
  assertErrorBody(missing, 401, 'Authentication error');
  const bogus = await raw('POST', '/api/execute', { headers: { 'X-Client-ID': s.clientId, Authorization: 'Bearer bogus' }, body });
  assertErrorBody(bogus, 403, 'Authentication error');
  const other = await rawInit();
  const swapped = await raw('POST', '/api/execute', { headers: { 'X-Client-ID': other.clientId, Authorization: `Bearer ${s.token}` }, body });
  assertErrorBody(swapped, 403);
  const madeUp = await raw('POST', '/api/execute', { headers: { 'X-Client-ID': 'cli_abc', Authorization: 'Bearer x' }, body });
  for (const r of [missing, bogus, swapped, madeUp]) {
    assert.equal(r.headers.get('x-atp-token'), null, 'token minted for an unverified caller');
  }
  const ok = await raw('POST', '/api/execute', { headers: authHeaders(s), body });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.result, 1);
  assert.ok(ok.headers.get('x-atp-token'));
});

test('execute without a session: a key may run code that does not pause; anonymous is refused', async () => {
  assertErrorBody(await raw('POST', '/api/execute', { body: { code: 'return 1' } }), 401);
  const ok = await raw('POST', '/api/execute', { headers: { 'X-API-Key': CLIENT_KEY }, body: { code: 'return await api.math.multiply({a: 6, b: 7})' } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.result, 42);
  assert.equal(ok.headers.get('x-atp-token'), null);
  const pauses = await raw('POST', '/api/execute', { headers: { 'X-API-Key': CLIENT_KEY }, body: { code: "return await atp.llm.call({prompt: 'x'})" } });
  assertErrorBody(pauses, 400, 'Client ID required for paused executions');
});

test('execute: a failing program is HTTP 200; bad requests are 400', async () => {
  const s = await rawInit();
  const failed = await raw('POST', '/api/execute', { headers: authHeaders(s), body: { code: "throw new Error('x')" } });
  assert.equal(failed.status, 200);
  assert.equal(failed.json.status, 'failed');
  assertErrorBody(await raw('POST', '/api/execute', { headers: authHeaders(s), body: { config: {} } }), 400, 'code');
  assertErrorBody(await raw('POST', '/api/execute', { headers: authHeaders(s), body: { code: 'return 1', config: { timeout: 'soon' } } }), 400, 'timeout');
  // Unknown config fields are ignored (§3.7), provenanceHints included.
  const extra = await raw('POST', '/api/execute', { headers: authHeaders(s), body: { code: 'return 2', config: { provenanceHints: ['x.y'], whatever: true, timeout: 999999 } } });
  assert.equal(extra.status, 200, extra.text);
  assert.equal(extra.json.result, 2);
});

test('unknown routes and wrong methods answer JSON (§2)', async () => {
  assertErrorBody(await raw('GET', '/api/nonexistent'), 404);
  assertErrorBody(await raw('POST', '/api/resume'), 404);
  const wrong = await raw('GET', '/api/execute');
  assertErrorBody(wrong, 405);
  assert.equal(wrong.headers.get('allow'), 'POST');
});

test('discovery needs a session or a key; the key scopes it', async () => {
  assertErrorBody(await raw('GET', '/api/definitions'), 401);
  assertErrorBody(await raw('POST', '/api/search', { body: { query: 'add' } }), 401);
  assertErrorBody(await raw('POST', '/api/explore', { body: { path: '/' } }), 401);
  const s = await rawInit();
  const bad = await raw('GET', '/api/definitions', { headers: { 'X-Client-ID': s.clientId, Authorization: 'Bearer x' } });
  assertErrorBody(bad, 403);
  const byKey = await raw('POST', '/api/explore', { headers: { 'X-API-Key': CLIENT_KEY }, body: { path: '/custom/math/add' } });
  assert.equal(byKey.status, 200);
  assert.equal(byKey.json.type, 'function');
  const notFound = await raw('POST', '/api/explore', { headers: { 'X-API-Key': CLIENT_KEY }, body: { path: '/custom/nope' } });
  assertErrorBody(notFound, 404, 'Path not found: /custom/nope');
});

test('a revoked key ends its sessions at once', async () => {
  const created = await admin('POST', '/api-keys', { name: 'short-lived', kind: 'client' });
  const { client } = await newClient({ key: created.key });
  assert.equal((await client.execute('return 1')).result, 1);
  await admin('DELETE', `/api-keys/${created.id}`);
  await assert.rejects(client.execute('return 1'), /Execution failed: /);
  await assert.rejects(client.connect(), /Connection failed: 403/);
});

test('POST /api/token/refresh (client 0.21, §3.10)', async () => {
  const s = await rawInit();
  const r = await raw('POST', '/api/token/refresh', { headers: authHeaders(s), body: { clientId: s.clientId } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.clientId, s.clientId);
  assert.notEqual(r.json.token, s.token);
  assert.ok(r.json.expiresAt > Date.now() && r.json.tokenRotateAt < r.json.expiresAt);
  const used = await raw('POST', '/api/execute', { headers: { 'X-Client-ID': s.clientId, Authorization: `Bearer ${r.json.token}` }, body: { code: 'return 3' } });
  assert.equal(used.json.result, 3);

  assertErrorBody(await raw('POST', '/api/token/refresh', { headers: { Authorization: `Bearer ${s.token}` }, body: {} }), 400, 'Client ID is required');
  assertErrorBody(await raw('POST', '/api/token/refresh', { headers: { 'X-Client-ID': s.clientId }, body: {} }), 401, 'Bearer token required');
  assertErrorBody(await raw('POST', '/api/token/refresh', { headers: { 'X-Client-ID': s.clientId, Authorization: 'Bearer x.y.z' }, body: {} }), 401);
});

test('executeStream: progress events, then the result (§3.9)', async () => {
  const { client } = await newClient();
  const events = [];
  const progress = [];
  const result = await client.executeStream(`
    atp.progress.report('start', 0);
    const sum = await api.math.add({a: 1, b: 1});
    atp.progress.report('half', 0.5);
    return sum;`, {}, (e) => events.push(e), (message, fraction) => progress.push([message, fraction]));
  assert.equal(result.status, 'completed', JSON.stringify(result));
  assert.deepEqual(result.result, { sum: 2 });
  assert.deepEqual(progress, [['start', 0], ['half', 0.5]]);
  assert.deepEqual(events.map((e) => e.type), ['progress', 'progress', 'result']);

  // A pause is returned as it is: executeStream does not resume.
  const paused = await client.executeStream("return await atp.llm.call({prompt: 'x'})");
  assert.equal(paused.status, 'paused');
  const done = await client.resume(paused.executionId, 'streamed');
  assert.equal(done.result, 'streamed');
});

test('the stream refuses unverified callers with an HTTP error', async () => {
  const client = new AgentToolProtocolClient({ baseUrl: BASE, headers: { 'X-API-Key': CLIENT_KEY } });
  await client.init();
  const bogus = await raw('POST', '/api/execute/stream', { headers: { 'X-Client-ID': 'cli_x', Authorization: 'Bearer y' }, body: { code: 'return 1' } });
  assertErrorBody(bogus, 403);
});
