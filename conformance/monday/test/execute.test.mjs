// Executes through the real client: server tools, every atp.* call, client
// tools, batching, the __error conventions and approvals (spec §4, §5, §7,
// §9, §12.4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mark, since, calls, dumpWire, newClient, assertResultShape, upstreamCount } from './helpers.mjs';

// run executes code with a fresh recording client and returns the result,
// the providers' record and the wire log of the execution.
async function run(code, config, clientOpts) {
  const { client, seen } = await newClient(clientOpts);
  const m = mark();
  const result = await client.execute(code, config);
  const log = since(m);
  assertResultShape(result);
  return { result, seen, log, client };
}

function completed(r) {
  assert.equal(r.result.status, 'completed', `${JSON.stringify(r.result)}\n${dumpWire(r.log)}`);
  return r.result.result;
}

test('a server tool completes without a resume', async () => {
  const r = await run('return await api.math.add({a: 1, b: 2})');
  assert.deepEqual(completed(r), { sum: 3 });
  assert.deepEqual(calls(r.log), ['POST /api/execute']);
  assert.equal(typeof r.result.stats.duration, 'number');
});

test('a server tool error is thrown in the code and can be caught', async () => {
  const r = await run(`
    try { await api.math.explode({}); return 'not thrown'; }
    catch (e) { return {caught: e.message}; }`);
  assert.match(completed(r).caught, /tool exploded/);
  const bad = await run('return await api.math.add({a: "x"})');
  assert.equal(bad.result.status, 'failed');
  assert.match(bad.result.error.message, /b|a/);
});

test('a server tool runs once per logical call across pauses', async () => {
  const id = `once-${Date.now()}`;
  const r = await run(`
    const first = await api.counter.hit({id: '${id}'});
    const a = await atp.llm.call({prompt: 'one'});
    const b = await atp.llm.call({prompt: 'two'});
    return {first, a, b};`);
  assert.deepEqual(completed(r), { first: { id, count: 1 }, a: 'LLM(one)', b: 'LLM(two)' });
  assert.deepEqual(calls(r.log), ['POST /api/execute', 'POST /api/resume (single)', 'POST /api/resume (single)']);
  assert.equal(await upstreamCount(id), 1);
});

test('atp.llm.call, extract and classify pause for the client (§5.2)', async () => {
  const r = await run(`
    const text = await atp.llm.call({prompt: 'hello', temperature: 0.5});
    const bare = await atp.llm.call('bare');
    const data = await atp.llm.extract({prompt: 'who', schema: {type: 'object'}});
    const cat = await atp.llm.classify({text: 'great', categories: ['positive', 'negative']});
    return {text, bare, data, cat};`);
  assert.deepEqual(completed(r), { text: 'LLM(hello)', bare: 'LLM(bare)', data: { name: 'Alice' }, cat: 'positive' });
  assert.equal(r.result.stats.llmCallsCount, 4);
  assert.deepEqual(r.seen.llm.map((c) => c.op), ['call', 'call', 'extract', 'classify']);
  assert.equal(r.seen.llm[0].options.temperature, 0.5);
  assert.deepEqual(r.seen.llm[3].categories, ['positive', 'negative']);
  const pause = r.log[0].responseBody;
  assert.equal(pause.status, 'paused');
  assert.equal(pause.needsCallback.type, 'llm');
  assert.equal(pause.needsCallback.operation, 'call');
  assert.equal(pause.needsCallback.payload.prompt, 'hello');
  assert.equal(typeof pause.needsCallback.payload.sequenceNumber, 'number');
});

test('an LLM error comes back as {__error, message} (§5.3)', async () => {
  const r = await run(`
    const v = await atp.llm.call({prompt: 'fail'});
    return {isError: v.__error === true, message: v.message};`);
  assert.deepEqual(completed(r), { isError: true, message: 'llm is down' });
  const resume = r.log.find((e) => e.path.startsWith('/api/resume/'));
  assert.deepEqual(resume.requestBody, { result: { __error: true, message: 'llm is down' } });
});

test('atp.approval.request: approve, deny, context and the executionId (§5.2)', async () => {
  const r = await run(`
    const yes = await atp.approval.request('ok?', {amount: 5});
    const no = await atp.approval.request('deny');
    const err = await atp.approval.request('explode');
    return {yes: yes.approved, response: yes.response, no: no.approved, err: err.__error === true};`);
  assert.deepEqual(completed(r), { yes: true, response: 'ok', no: false, err: true });
  assert.equal(r.result.stats.approvalCallsCount, 3);
  assert.equal(r.seen.approval[0].message, 'ok?');
  assert.equal(r.seen.approval[0].context.amount, 5);
  assert.equal(r.seen.approval[0].context.executionId, r.result.executionId);
});

test('atp.embedding: embed with metadata, search with collection, empty search, errors throw', async () => {
  const r = await run(`
    const id = await atp.embedding.embed('hello world', {collection: 'docs', lang: 'en'});
    const ids = await atp.embedding.embed(['a', 'bb']);
    const hits = await atp.embedding.search('hello', {topK: 5, collection: 'docs'});
    const none = await atp.embedding.search('x', {collection: 'nothing'});
    return {id, ids, hits, none};`);
  const out = completed(r);
  assert.equal(typeof out.id, 'string');
  assert.equal(out.hits.length, 1);
  assert.equal(out.hits[0].id, out.id);
  assert.equal(out.hits[0].text, 'hello world');
  assert.equal(typeof out.hits[0].similarity, 'number');
  assert.equal(out.hits[0].metadata.lang, 'en');
  assert.deepEqual(out.none, []);
  assert.deepEqual(r.seen.embed, ['hello world', 'a\nbb', 'hello', 'x']);

  const broken = await run(`
    try { await atp.embedding.embed('x'); return 'no'; } catch (e) { return e.message; }`,
  undefined, { providers: { embedding: { embed: async () => { throw new Error('embedder down'); } } } });
  assert.match(completed(broken), /embedder down/);
});

test('atp.cache persists per client across executions; get of a missing key is null', async () => {
  const { client } = await newClient();
  const a = await client.execute(`
    await atp.cache.set('k', {v: 1});
    return {has: await atp.cache.has('k'), missing: await atp.cache.get('nope')};`);
  assert.deepEqual(a.result, { has: true, missing: null }, JSON.stringify(a));
  const b = await client.execute(`
    const v = await atp.cache.get('k');
    await atp.cache.delete('k');
    return {v, after: await atp.cache.has('k')};`);
  assert.deepEqual(b.result, { v: { v: 1 }, after: false });
  const { client: other } = await newClient();
  const c = await other.execute(`await atp.cache.set('mine', 1); return await atp.cache.get('k');`);
  assert.equal(c.result, null);
});

test('atp.progress.report does not break execute; setTimeout works', async () => {
  const r = await run(`
    atp.progress.report('half', 0.5);
    await new Promise((ok) => setTimeout(ok, 20));
    atp.progress.report('done', 1);
    return 'ok';`);
  assert.equal(completed(r), 'ok');
});

test('client tools: ok, throwing (catchable) and the payload (§9)', async () => {
  const r = await run(`
    const loc = await api.client.getLocation({precise: true});
    let caught;
    try { await api.client.brokenTool({}); } catch (e) { caught = e.message; }
    return {loc, caught};`);
  assert.deepEqual(completed(r), { loc: { city: 'TLV', input: { precise: true } }, caught: 'client tool failed' });
  const pause = r.log[0].responseBody.needsCallback;
  assert.deepEqual({ type: pause.type, operation: pause.operation, toolName: pause.payload.toolName, namespace: pause.payload.namespace, input: pause.payload.input },
    { type: 'tool', operation: 'call', toolName: 'getLocation', namespace: 'client', input: { precise: true } });
  const uncaught = await run('return await api.client.brokenTool({})');
  assert.equal(uncaught.result.status, 'failed');
  assert.match(uncaught.result.error.message, /client tool failed/);
});

test('Promise.all of three LLM calls pauses once; the handlers start within 100 ms (§5.4)', async () => {
  const r = await run(`
    return await Promise.all([
      atp.llm.call({prompt: 'A'}), atp.llm.call({prompt: 'B'}), atp.llm.call({prompt: 'C'}),
    ]);`, undefined, { llmDelay: 150 });
  assert.deepEqual(completed(r), ['LLM(A)', 'LLM(B)', 'LLM(C)']);
  assert.deepEqual(calls(r.log), ['POST /api/execute', 'POST /api/resume (batch 3)'], dumpWire(r.log));
  const starts = r.seen.llmStarts;
  assert.ok(Math.max(...starts) - Math.min(...starts) < 100, `starts spread over ${Math.max(...starts) - Math.min(...starts)} ms`);
  const batch = r.log[0].responseBody.needsCallbacks;
  assert.equal(new Set(batch.map((c) => c.id)).size, 3);
  assert.deepEqual(batch.map((c) => c.payload.prompt), ['A', 'B', 'C']);
});

test('Promise.all mixing client tools, LLM and a map; sequential batches', async () => {
  const r = await run(`
    const [loc, text, many] = await Promise.all([
      api.client.getLocation({precise: false}),
      atp.llm.call({prompt: 'x'}),
      Promise.all(['p', 'q'].map(async (p) => atp.llm.call({prompt: p}))),
    ]);
    const second = await Promise.all([atp.llm.call({prompt: 'y'}), atp.llm.call({prompt: 'z'})]);
    return {loc, text, many, second};`);
  assert.deepEqual(completed(r), { loc: { city: 'TLV', input: { precise: false } }, text: 'LLM(x)', many: ['LLM(p)', 'LLM(q)'], second: ['LLM(y)', 'LLM(z)'] });
  assert.deepEqual(calls(r.log), ['POST /api/execute', 'POST /api/resume (batch 4)', 'POST /api/resume (batch 2)'], dumpWire(r.log));
});

test('a batch of 15 keeps results matched to their calls', async () => {
  const r = await run(`
    return await Promise.all(Array.from({length: 15}, (_, i) => atp.llm.call({prompt: 'n' + i})));`, { llmCalls: 15 });
  assert.deepEqual(completed(r), Array.from({ length: 15 }, (_, i) => `LLM(n${i})`));
});

test('a missing service fails with SERVICE_NOT_PROVIDED, single and batch (§3.8, §5.5)', async () => {
  const r = await run('return await atp.llm.call({prompt: "x"})', undefined, { providers: {} });
  assert.equal(r.result.status, 'failed');
  assert.equal(r.result.error.code, 'SERVICE_NOT_PROVIDED');
  assert.match(r.result.error.message, /service not provided/);

  const b = await run('return await Promise.all([atp.llm.call({prompt: "x"}), atp.llm.call({prompt: "y"})])', undefined, { providers: {} });
  assert.equal(b.result.status, 'failed');
  assert.equal(b.result.error.code, 'SERVICE_NOT_PROVIDED');
  assert.deepEqual(calls(b.log), ['POST /api/execute', 'POST /api/resume (batch 2)']);
});

test('approvals forced by annotations: approved runs, denied throws (§7)', async () => {
  const ok = await run("return await api.danger.wipe({what: 'all'})");
  assert.deepEqual(completed(ok), { wiped: 'all' });
  assert.equal(ok.seen.approval.length, 1);
  assert.equal(ok.seen.approval[0].message, 'Approve destructive operation: wipe');
  assert.equal(ok.seen.approval[0].context.tool, 'wipe');
  assert.equal(ok.result.stats.approvalCallsCount, 0, 'forced approvals are not counted');

  const denied = await run(`
    try { await api.danger.peek({}); return 'ran'; } catch (e) { return e.message; }`);
  assert.equal(completed(denied), 'Operation peek denied by user');
  assert.equal(denied.seen.approval[0].message, 'Approve sensitive operation: peek');

  const client = await run('return await api.client.eraseDisk({})');
  assert.equal(completed(client), 'erased');
  assert.match(client.seen.approval[0].message, /eraseDisk/);
  assert.equal(client.seen.approval[0].context.isClientTool, true);
});

test('sliding token: the X-ATP-Token of a response is the next bearer (§2, §12.6)', async () => {
  const { client } = await newClient();
  const m = mark();
  await client.execute('return await atp.llm.call({prompt: "a"})');
  await client.execute('return 1');
  const log = since(m);
  assert.deepEqual(calls(log), ['POST /api/execute', 'POST /api/resume (single)', 'POST /api/execute']);
  for (let i = 0; i < log.length; i++) {
    const token = log[i].responseHeaders['x-atp-token'];
    const expires = Number(log[i].responseHeaders['x-atp-token-expires']);
    assert.ok(token, `response ${i} has no X-ATP-Token`);
    assert.ok(expires > Date.now(), `X-ATP-Token-Expires ${expires}`);
    if (i + 1 < log.length) assert.equal(log[i + 1].requestHeaders.authorization, `Bearer ${token}`);
  }
  assert.notEqual(log[0].responseHeaders['x-atp-token'], log[0].requestHeaders.authorization.slice(7));
});

test('a result that is not JSON fails with EXECUTION_FAILED; undefined is completed', async () => {
  const fn = await run('return () => 1');
  assert.equal(fn.result.status, 'failed');
  assert.equal(fn.result.error.code, 'EXECUTION_FAILED');
  const undef = await run('const x = 1;');
  assert.equal(undef.result.status, 'completed');
});
