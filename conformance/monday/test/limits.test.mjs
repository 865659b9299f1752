// Limits and failures of sandboxed code: HTTP 200 with a non-completed
// status (spec §2, §5.8, §14 #3), and isolation between executions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newClient, assertResultShape } from './helpers.mjs';

const { client } = await newClient();

async function exec(code, config) {
  const result = await client.execute(code, config);
  assertResultShape(result);
  return result;
}

function failure(result, status, code) {
  assert.equal(result.status, status, JSON.stringify(result));
  assert.equal(result.error?.code, code, JSON.stringify(result));
  assert.equal(typeof result.error.message, 'string');
}

test('an infinite loop times out at the requested timeout', async () => {
  const started = Date.now();
  const r = await exec('while (true) {}', { timeout: 1000 });
  failure(r, 'timeout', 'TIMEOUT_ERROR');
  const took = Date.now() - started;
  assert.ok(took >= 900 && took < 10_000, `took ${took} ms`);
});

test('an allocation loop hits the memory limit', async () => {
  const r = await exec(`
    const keep = [];
    for (;;) keep.push(new Array(100000).fill('x'.repeat(16) + keep.length));`,
  { timeout: 60_000, maxMemory: 64 * 1024 * 1024 });
  failure(r, 'memory_exceeded', 'MEMORY_LIMIT_EXCEEDED');
});

test('the LLM call cap: llmCalls and maxLLMCalls', async () => {
  for (const config of [{ llmCalls: 1 }, { maxLLMCalls: 1 }]) {
    const r = await exec(`
      await atp.llm.call({prompt: 'one'});
      await atp.llm.call({prompt: 'two'});
      return 'too many';`, config);
    failure(r, 'llm_calls_exceeded', 'LLM_CALL_LIMIT_EXCEEDED');
    assert.match(r.error.message, /Exceeded max LLM calls: 1/);
  }
});

test('syntax, reference, type and thrown errors are classified (§5.8)', async () => {
  failure(await exec('return {{;'), 'parse_error', 'SYNTAX_ERROR');
  failure(await exec('return foo.bar'), 'failed', 'REFERENCE_ERROR');
  failure(await exec('const x = 1; x()'), 'failed', 'TYPE_ERROR');
  const boom = await exec("throw new Error('boom')");
  failure(boom, 'failed', 'EXECUTION_FAILED');
  assert.match(boom.error.message, /boom/);
});

test('no host access: require, process, fetch and module are absent (§7)', async () => {
  const r = await exec('return [typeof require, typeof process, typeof fetch, typeof module, typeof exports]');
  assert.equal(r.status, 'completed');
  assert.deepEqual(r.result, ['undefined', 'undefined', 'undefined', 'undefined', 'undefined']);
});

test('concurrent executions stay isolated', async () => {
  const clients = await Promise.all(Array.from({ length: 4 }, () => newClient()));
  const runs = [];
  clients.forEach(({ client: c }, i) => {
    for (let j = 0; j < 2; j++) {
      const me = `c${i}-${j}`;
      runs.push(c.execute(`
        globalThis.who = '${me}';
        Object.prototype.polluted = '${me}';
        const answer = await atp.llm.call({prompt: '${me}'});
        await new Promise((ok) => setTimeout(ok, 10));
        const sum = await api.math.add({a: ${i}, b: ${j}});
        return {who: globalThis.who, polluted: ({}).polluted, answer, sum: sum.sum};`).then((r) => ({ me, i, j, r })));
    }
  });
  for (const { me, i, j, r } of await Promise.all(runs)) {
    assert.equal(r.status, 'completed', JSON.stringify(r));
    assert.deepEqual(r.result, { who: me, polluted: me, answer: `LLM(${me})`, sum: i + j });
  }
  // Nothing leaked into a later execution.
  const after = await exec("return [typeof globalThis.who, 'polluted' in {}]");
  assert.deepEqual(after.result, ['undefined', false]);
});
