// `ikun doctor` with the emulated CUDA device (IKUN_CUDA_EMULATE=1): a device like any other, whose training
// step must match the CPU's.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SELF_TEST_TOLERANCE, type DoctorReport } from '../../lib/cli/doctor-report.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, IKUN_CUDA_EMULATE: '1' } });

describe('ikun doctor on the emulated CUDA device', () => {
  it('lists the device and its self-test matches the CPU within the float32 tolerance; exit 0', () => {
    const r = run(['doctor', '--json']);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.binary).toMatchObject({ source: 'built', emulated: true });
    expect(report.binary.path).toMatch(/build-emulated\/Release\/ikun\.node$/);
    expect(report.cuda).toMatchObject({ compiled: true, available: true });
    expect(report.cuda.reason).toBeUndefined();
    expect(report.cuda.devices).toEqual([expect.objectContaining({ device: 'cuda:0', name: 'ikun emulated CUDA device (host threads)', computeCapability: '9.0', code: 'emulated' })]);
    expect(report.selfTest.map((t) => [t.device, t.passed])).toEqual([['cpu', true], ['cuda:0', true]]);
    const gpu = report.selfTest[1]!;
    for (const [what, e] of Object.entries(gpu.relativeError!)) expect(e, what).toBeLessThan(SELF_TEST_TOLERANCE);
    // the same step, so the same loss to float32 rounding
    expect(gpu.loss).toBeCloseTo(report.selfTest[0]!.loss!, 6);
    expect(report).toMatchObject({ ok: true, problems: [] });
  });

  it('says so in the report', () => {
    const r = run(['doctor']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\nCUDA {7}the emulated device of the tests/);
    expect(r.stdout).toMatch(/\n {11}cuda:0 {2}ok {3}relative error vs the CPU: loss [\d.e+-]+, gradients [\d.e+-]+, weights after the update [\d.e+-]+ \(fp32 products, tolerance 1e-4\)/);
    expect(r.stdout).toMatch(/\nok: the CPU and the GPU work\n$/);
  });
});
