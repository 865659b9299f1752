// Manual resumes: claimed services without a provider, ClientCallbackError,
// a resume long after the pause, batches answered out of order (spec §5.3,
// §5.5, §14 #5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentToolProtocolClient, ClientCallbackError } from '@mondaydotcomorg/atp-client';
import { BASE, CLIENT_KEY, mark, since, calls, dumpWire, raw, rawInit, authHeaders, assertErrorBody, sleep } from './helpers.mjs';

test('a claimed service without a provider returns the pause; client.resume long after completes it', async () => {
  const client = new AgentToolProtocolClient({ baseUrl: BASE, headers: { 'X-API-Key': CLIENT_KEY } });
  await client.init();
  const m = mark();
  const paused = await client.execute(`
    const t0 = Date.now();
    const answer = await atp.llm.call({prompt: 'human?'});
    const sum = await api.math.add({a: 2, b: 3});
    return {answer, sum: sum.sum, waited: Date.now() - t0};`,
  { timeout: 1500, clientServices: { hasLLM: true } });
  assert.equal(paused.status, 'paused', JSON.stringify(paused));
  assert.equal(paused.needsCallback.type, 'llm');
  assert.equal(paused.needsCallback.payload.prompt, 'human?');

  // Longer than the execution's timeout: paused time does not count.
  await sleep(2500);
  const done = await client.resume(paused.executionId, 'yes, a human');
  assert.equal(done.status, 'completed', JSON.stringify(done));
  assert.equal(done.result.answer, 'yes, a human');
  assert.equal(done.result.sum, 5);
  assert.ok(done.result.waited >= 2400, `the code saw ${done.result.waited} ms pass`);
  assert.deepEqual(calls(since(m)), ['POST /api/execute', 'POST /api/resume (single)'], dumpWire(since(m)));

  // Finished: a second resume is 404.
  await assert.rejects(client.resume(paused.executionId, 'again'), /Resume failed: /);
  const last = since(m).at(-1);
  assert.equal(last.status, 404);
});

test('a ClientCallbackError is re-thrown by execute; the execution waits for a manual resume', async () => {
  class Interrupt extends ClientCallbackError {}
  let asked = 0;
  const client = new AgentToolProtocolClient({
    baseUrl: BASE, headers: { 'X-API-Key': CLIENT_KEY },
    serviceProviders: {
      approval: { request: async () => { asked++; throw new Interrupt('needs a human'); } },
    },
  });
  await client.init();
  const m = mark();
  await assert.rejects(client.execute(`
    const a = await atp.approval.request('ship it?');
    return a.approved ? 'shipped' : 'held';`), /needs a human/);
  assert.equal(asked, 1);
  const pause = since(m)[0].responseBody;
  assert.equal(pause.status, 'paused');
  await sleep(500);
  const done = await client.resume(pause.executionId, { approved: true, timestamp: Date.now() });
  assert.equal(done.status, 'completed');
  assert.equal(done.result, 'shipped');
});

test('batch answers are matched by id, not by position (§14 #5)', async () => {
  const s = await rawInit();
  const exec = await raw('POST', '/api/execute', {
    headers: authHeaders(s),
    body: { code: "return await Promise.all([atp.llm.call({prompt: 'A'}), atp.llm.call({prompt: 'B'})])", config: { clientServices: { hasLLM: true } } },
  });
  assert.equal(exec.status, 200, exec.text);
  assert.equal(exec.json.status, 'paused');
  const cbs = exec.json.needsCallbacks;
  assert.equal(cbs.length, 2);
  const token = exec.headers.get('x-atp-token');
  const reversed = cbs.slice().reverse().map((cb) => ({ id: cb.id, result: `answer ${cb.payload.prompt}` }));
  const done = await raw('POST', `/api/resume/${exec.json.executionId}`, {
    headers: { 'X-Client-ID': s.clientId, Authorization: `Bearer ${token}` },
    body: { results: reversed },
  });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.json.status, 'completed');
  assert.deepEqual(done.json.result, ['answer A', 'answer B']);
});

test('resume: 401 without auth, 403 for another client, 404 for an unknown id (§3.8)', async () => {
  const a = await rawInit();
  const b = await rawInit();
  const exec = await raw('POST', '/api/execute', {
    headers: authHeaders(a),
    body: { code: "return await atp.llm.call({prompt: 'x'})", config: { clientServices: { hasLLM: true } } },
  });
  assert.equal(exec.json.status, 'paused');
  const id = exec.json.executionId;

  const noAuth = await raw('POST', `/api/resume/${id}`, { body: { result: 'x' } });
  assertErrorBody(noAuth, 401, 'Authentication required');
  assert.equal(noAuth.headers.get('x-atp-token'), null);

  const badToken = await raw('POST', `/api/resume/${id}`, { headers: { 'X-Client-ID': a.clientId, Authorization: 'Bearer nope' }, body: { result: 'x' } });
  assertErrorBody(badToken, 403);
  assert.equal(badToken.headers.get('x-atp-token'), null);

  const other = await raw('POST', `/api/resume/${id}`, { headers: authHeaders(b), body: { result: 'x' } });
  assertErrorBody(other, 403, 'belongs to different client');
  assert.ok(other.headers.get('x-atp-token'), 'a verified caller gets a fresh token, even on 403');

  const unknown = await raw('POST', '/api/resume/no-such-execution', { headers: authHeaders(a), body: { result: 'x' } });
  assertErrorBody(unknown, 404);
  const fresh = unknown.headers.get('x-atp-token');
  assert.ok(fresh, 'a verified caller gets X-ATP-Token on a 404 (§2)');
  assert.ok(Number(unknown.headers.get('x-atp-token-expires')) > Date.now());

  // The owner still can, with the rotated token.
  const done = await raw('POST', `/api/resume/${id}`, { headers: { 'X-Client-ID': a.clientId, Authorization: `Bearer ${fresh}` }, body: { result: 'mine' } });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.json.result, 'mine');
  const again = await raw('POST', `/api/resume/${id}`, { headers: authHeaders(a), body: { result: 'x' } });
  assertErrorBody(again, 404);

  const empty = await raw('POST', '/api/resume/whatever', { headers: authHeaders(a), body: '' });
  assert.ok(empty.status === 400 || empty.status === 404, empty.text);
});
