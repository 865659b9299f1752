// One worker thread of workload (a) in bench.mjs, for the run that spreads
// the 16 executions in flight over several threads (BENCH_A_THREADS): one
// Node thread of the client tops out near 1,400 executions/s, below what
// atp-server serves. It inits its share of the clients, then on each
// message runs its share of the executions and posts the runLoop result.
// Its requests are tagged bench-t<attempt>-<i>, i counted from the offset
// the main thread gives, so that the server-side times can be found in
// atp-server's access log.
import { parentPort, workerData } from 'node:worker_threads';
import { newClient, tagged, check, runLoop, CODE_A } from './client.mjs';

const { target, clients: count } = workerData;
const clients = await Promise.all(Array.from({ length: count }, () => newClient(target)));
parentPort.on('message', async ({ n, attempt, offset, deadlineMs }) => {
  const r = await runLoop(clients, n, async (c, i, m) =>
    check(await tagged(c, m ? `bench-t${m}-${offset + i}` : '', () => c.execute(CODE_A)), 3), deadlineMs, attempt);
  parentPort.postMessage(r);
});
parentPort.postMessage({ ready: true });
