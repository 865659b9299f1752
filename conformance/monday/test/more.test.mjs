// The rest of the runtime and client surface: X-User-ID, embedding
// similarity/getAll/count, cache.clear, a batch whose handler throws, the
// preRequest hook, and the MCP-style tools of getATPTools (spec §4, §5.3,
// §5.4, §7, §11).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentToolProtocolClient } from '@mondaydotcomorg/atp-client';
import { BASE, CLIENT_KEY, mark, since, calls, dumpWire, newClient, recordingProviders } from './helpers.mjs';

test('X-User-ID names the end user of server tools', async () => {
  const { client } = await newClient({ headers: { 'X-User-ID': 'user-7' } });
  const r = await client.execute('return await api.math.whoami({})');
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.result, 'user-7');
});

test('embedding similarity, getAll and count; cache.clear', async () => {
  const { providers } = recordingProviders();
  providers.embedding.similarity = async (a, b) => (a === b ? 1 : 0.25);
  const { client } = await newClient({ providers });
  const r = await client.execute(`
    await atp.embedding.embed(['x', 'yy'], {tag: 't'});
    const all = atp.embedding.getAll();
    const sim = await atp.embedding.similarity('a', 'b');
    await atp.cache.set('one', 1);
    await atp.cache.set('two', 2);
    await atp.cache.clear();
    return {count: atp.embedding.count(), texts: all.map((e) => e.text), vector: all[0].embedding, tag: all[1].metadata.tag,
            sim, left: [await atp.cache.has('one'), await atp.cache.has('two')]};`);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.deepEqual(r.result, { count: 2, texts: ['x', 'yy'], vector: [4, 1, 0.5], tag: 't', sim: 0.25, left: [false, false] });
});

test('a batch whose handler throws resumes every entry with {__error} (§5.3, §5.4)', async () => {
  const m = mark();
  const { client } = await newClient();
  const r = await client.execute(`
    const [a, b] = await Promise.all([atp.llm.call({prompt: 'fail'}), atp.llm.call({prompt: 'fine'})]);
    return {a, b};`);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.deepEqual(r.result, { a: { __error: true, message: 'llm is down' }, b: { __error: true, message: 'llm is down' } });
  assert.deepEqual(calls(since(m)).slice(-2), ['POST /api/execute', 'POST /api/resume (batch 2)'], dumpWire(since(m)));
});

test('the preRequest hook sees the session headers and may replace them (§11)', async () => {
  const seen = [];
  const client = new AgentToolProtocolClient({
    baseUrl: BASE,
    headers: { 'X-API-Key': CLIENT_KEY },
    hooks: {
      preRequest: async ({ url, method, currentHeaders }) => {
        seen.push({ path: new URL(url).pathname, method, headers: { ...currentHeaders } });
        return { headers: { ...currentHeaders, 'X-Trace': 'abc' } };
      },
    },
  });
  await client.init();
  await client.connect();
  const r = await client.execute('return 1');
  assert.equal(r.result, 1);
  assert.deepEqual(seen.map((s) => `${s.method} ${s.path.replace(/^.*(\/api\/)/, '$1')}`), ['POST /api/init', 'GET /api/definitions', 'POST /api/execute']);
  for (const s of seen.slice(1)) {
    assert.ok(s.headers['X-Client-ID'] && s.headers.Authorization.startsWith('Bearer '), JSON.stringify(s.headers));
  }
});

test('getATPTools: execute_code, search_api, explore_api, fetch_all_apis', async () => {
  const { client } = await newClient();
  const tools = Object.fromEntries(client.getATPTools().map((t) => [t.name, t]));
  const exec = JSON.parse(await tools.execute_code.func({ code: 'return await api.math.multiply({a: 3, b: 4})', timeout: 5000, maxMemory: 64 * 1024 * 1024 }));
  assert.equal(exec.success, true, JSON.stringify(exec));
  assert.equal(exec.result, 12);
  assert.equal(typeof exec.stats.duration, 'number');
  assert.equal(typeof exec.stats.memoryUsed, 'number');
  const failed = JSON.parse(await tools.execute_code.func({ code: 'return nope' }));
  assert.equal(failed.success, false);
  assert.match(failed.error, /nope/);
  assert.match(await tools.search_api.func({ query: 'multiply' }), /multiply/);
  assert.match(await tools.explore_api.func({ path: '/custom/math' }), /multiply/);
  await client.connect();
  assert.match(await tools.fetch_all_apis.func({}), /declare const api/);
});
