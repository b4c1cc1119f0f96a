// What `ikun train` writes into a run folder, and when: bad data and bad flags fail before the folder is
// created or written; config.json says how the run was made (the resolved values and ikun's version);
// a finished run refused by --resume says how many epochs it has finished.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ikunVersion } from '../../lib/checkpoint.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
const tmp = (): string => mkdtempSync(join(tmpdir(), 'ikun-cli-folder-'));

describe('ikun train and its run folder', () => {
  it('an empty --data folder and bad flags fail before the run folder is created or written', () => {
    const root = tmp();
    const emptyData = join(root, 'empty-data');
    mkdirSync(emptyData);
    const fresh = join(root, 'fresh'); // not there yet: must stay so
    const existing = join(root, 'existing'); // already there: must stay empty
    mkdirSync(existing);
    for (const out of [fresh, existing]) {
      const r = run(['train', '--data', emptyData, '--device', 'cpu', '--out', out]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/^ikun: Fashion-MNIST not found/);
      expect(r.stderr).toContain('`--data DIR`');
    }
    for (const flags of [['--checkpoint-every', '0'], ['--on-nan', 'ignore'], ['--epochs', '-1']]) {
      const r = run(['train', '--sample', '--device', 'cpu', '--out', fresh, ...flags]);
      expect(r.status, flags.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^ikun: /);
    }
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(existing)).toEqual([]);
  });

  it('config.json records the values the run used and the version; --resume of a finished run counts the epochs it has', () => {
    const out = join(tmp(), 'run');
    // No --lr, --subset or --test-batch and --device auto: config.json must say what they came to.
    const r = run(['train', '--sample', '--epochs', '2', '--channels', '4', '--batch', '100', '--device', 'auto', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.lr).toBe(0.1);
    expect(config.subset).toBe(4000);
    expect(config.testBatch).toBe(100);
    expect(String(config.device)).toMatch(/^(cpu|cuda:\d+)$/);
    expect(config.requested).toEqual({ lr: null, device: 'auto', subset: null, testBatch: null });
    expect(config.epochs).toBe(2);
    expect(config.ikun_version).toBe(ikunVersion());
    expect(config.out).toBe(out);

    const again = run(['train', '--resume', out, '--epochs', '1']);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`--resume: '${out}' has finished 2 epochs, more than the 1 asked for; pass --epochs with a larger total to train on`);
    const same = run(['train', '--resume', out]);
    expect(same.status).toBe(1);
    expect(same.stderr).toContain(`has finished all 2 epochs`);
  });
});
