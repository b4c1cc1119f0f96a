// A worker thread terminated while it is inside a native call that throws must end quietly, not abort the
// process. During termination node-addon-api cannot hand the binding's error to JS; built without
// NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS it throws a second C++ exception out of the callback and
// std::terminate kills every thread of the process (a vitest fork died of it: "terminate called after
// throwing an instance of 'Napi::Error'"). The training worker is terminated that way when a caller's
// hook throws mid-epoch.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeBinary } from '../../lib/native.js';
import { spawnToEnd } from '../helpers/spawn.js';

// The main thread starts workers one after another and terminates each a few milliseconds after it reports
// that it is in its loop of native calls that throw (a bad count, a typed array of the wrong type): the
// termination lands inside one of those calls most of the time. Before the fix 300 workers crashed the
// process every time; 150 keep the test short.
const program = `
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
if (isMainThread) {
  const total = Number(process.argv[2]);
  let started = 0;
  const next = () => {
    if (started++ === total) return console.log('all ' + total + ' workers terminated');
    const worker = new Worker(__filename, { workerData: process.argv[3] });
    worker.on('message', () => setTimeout(() => void worker.terminate(), Math.random() * 4));
    worker.on('error', () => {});
    worker.on('exit', next);
  };
  next();
} else {
  const addon = require(workerData);
  const storage = new addon.Storage(0, 16, true);
  parentPort.postMessage('in the loop');
  for (;;) {
    try { new addon.Storage(0, -1, true); } catch {}
    try { storage.write(new Float64Array(3)); } catch {}
  }
}
`;

const dir = mkdtempSync(join(tmpdir(), 'ikun-terminate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('native addon in a terminated worker', () => {
  it('a worker terminated inside throwing native calls ends without aborting the process', async () => {
    const script = join(dir, 'terminate.cjs');
    writeFileSync(script, program);
    const run = await spawnToEnd(process.execPath, [script, '150', nativeBinary.path], process.env);
    expect(run.output).not.toContain('terminate called');
    expect({ status: run.status, signal: run.signal }).toEqual({ status: 0, signal: null });
    expect(run.output).toContain('all 150 workers terminated');
  }, 120_000);
});
