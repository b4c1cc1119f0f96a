// `ikun train` stopped by SIGINT / SIGTERM (finishes the step, saves it, exits 130 / 143) or killed by
// SIGKILL after a checkpoint every N steps, then `--resume`: the finished run's metrics.jsonl equals an
// uninterrupted run's, line by line (same seed; the seconds aside).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../lib/safetensors.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-cli-stop-'));
// 2,000 images in batches of 16: 125 steps per epoch, long enough to stop inside one.
const args = ['train', '--sample', '--epochs', '3', '--channels', '4', '--subset', '2000', '--batch', '16', '--device', 'cpu'];
const lines = (dir: string): string[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
  const { epoch_s: _a, test_s: _b, samples_per_s: _c, ...rest } = JSON.parse(l) as Record<string, unknown>;
  return JSON.stringify(rest);
});

let reference: string[] = [];
beforeAll(() => {
  const dir = join(tmp(), 'reference');
  const r = spawnSync(process.execPath, [bin, ...args, '--out', dir], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  reference = lines(dir);
  expect(reference).toHaveLength(3);
}, 120_000);

/** Starts a run and sends `signal` once `when` says so (checked on each stdout chunk and every 20 ms). */
async function runAndSignal(extra: string[], signal: NodeJS.Signals, when: (stdout: string) => boolean):
  Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '', sent = false;
  const check = (): void => {
    if (!sent && when(stdout)) {
      sent = true;
      child.kill(signal);
    }
  };
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); check(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const poll = setInterval(check, 20);
  const status = await new Promise<number | null>((done) => child.on('exit', (code, sig) => done(code ?? (sig ? -1 : null))));
  clearInterval(poll);
  return { status, stdout, stderr };
}

/** True from 200 ms after epoch 1's line: well inside epoch 2's 125 steps (a signal right at the line stops after epoch 1). */
function insideEpoch2(): (stdout: string) => boolean {
  let seenAt = 0;
  return (out) => {
    if (!/epoch 1\/3/.test(out)) return false;
    seenAt ||= Date.now();
    return Date.now() - seenAt >= 200;
  };
}

describe('ikun train stopped and resumed', () => {
  it('SIGINT inside epoch 2: the step finishes, last.safetensors holds it, exit 130 with how to resume; --resume gives the same metrics', async () => {
    const dir = join(tmp(), 'sigint');
    const r = await runAndSignal(['--out', dir], 'SIGINT', insideEpoch2());
    expect(r.status, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/ikun: SIGINT: stopping after the current step and saving it \(Ctrl-C again stops at once\)/);
    const meta = readSafetensors(join(dir, 'last.safetensors')).metadata;
    expect(meta.epoch).toBe('1');
    const step = Number(meta.step);
    expect(step).toBeGreaterThanOrEqual(1);
    expect(step).toBeLessThanOrEqual(125);
    expect(r.stderr).toContain(`ikun: SIGINT: stopped in epoch 2 after step ${step} of 125 (last.safetensors holds that point). Continue with: ikun train --resume ${dir}`);
    const resumed = spawnSync(process.execPath, [bin, 'train', '--resume', dir], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`resuming ${dir} in epoch 2 after step ${step} (a run of 3 epochs)`);
    // the progress counts the run's 3 epochs, not the default 64
    expect(resumed.stdout).toMatch(/^epoch 2\/3 {2}train loss/m);
    expect(lines(dir)).toEqual(reference);
  });

  it('SIGTERM exits 143 the same way; SIGKILL after a checkpoint every 40 steps resumes from that checkpoint with the same metrics', async () => {
    const term = join(tmp(), 'sigterm');
    const t = await runAndSignal(['--out', term], 'SIGTERM', insideEpoch2());
    expect(t.status, t.stderr).toBe(143);
    expect(t.stderr).toMatch(/ikun: SIGTERM: stopped in epoch 2 after step \d+ of 125 \(last.safetensors holds that point\)\. Continue with: ikun train --resume /);
    const dir = join(tmp(), 'sigkill');
    // Killed once a checkpoint inside epoch 2 is on disk (global step 160 is epoch 2, step 35).
    const atStep = (): boolean => {
      if (!existsSync(join(dir, 'last.safetensors'))) return false;
      try {
        const m = readSafetensors(join(dir, 'last.safetensors')).metadata;
        return m.epoch === '1' && Number(m.step) > 0;
      } catch {
        return false; // being replaced this moment
      }
    };
    const k = await runAndSignal(['--out', dir, '--checkpoint-every', '40'], 'SIGKILL', atStep);
    expect(k.status).toBe(-1);
    const killedAt = readSafetensors(join(dir, 'last.safetensors')).metadata;
    expect(killedAt.epoch).toBe('1');
    expect(['35', '75', '115']).toContain(killedAt.step); // 125 + step is a multiple of 40
    const resumed = spawnSync(process.execPath, [bin, 'train', '--resume', dir], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(lines(dir)).toEqual(reference);
    expect(spawnSync(process.execPath, [bin, 'train', '--resume', term], { encoding: 'utf8' }).status).toBe(0);
    expect(lines(term)).toEqual(reference);
  });
});
