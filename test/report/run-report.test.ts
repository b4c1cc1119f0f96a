// `ikun train` writes report.html for its own run: learning curves and firing rates, inlined, drawable.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderSvg, reportSpecs } from '../../lib/report/render-svg.js';
import { runReportHtml } from '../../lib/report/run-report.js';
import { spawnToEnd } from '../helpers/spawn.js';

const bin = resolve(__dirname, '../../dist/lib/cli.js');

describe('the report of one run', () => {
  it('ikun train writes report.html with its epochs, curves and firing rates', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wt12-run-')), 'run');
    const r = await spawnToEnd(process.execPath, [bin, 'train', '--sample', '--epochs', '2', '--channels', '4', '--subset', '512', '--device', 'cpu', '--out', out], { ...process.env });
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('charts in report.html');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(html).toContain(`Final test accuracy ${(100 * metrics[1].test_acc).toFixed(2)}%`);
    const specs = reportSpecs(html);
    expect(Object.keys(specs)).toEqual(['curves', 'firing-rates']);
    const rows = (specs.curves!.data as { values: Array<{ metric: string; epoch: number; mean: number }> }).values;
    expect(rows.filter((v) => v.metric === 'test accuracy').map((v) => v.mean)).toEqual(metrics.map((m) => m.test_acc));
    for (const spec of Object.values(specs)) expect(((await renderSvg(spec)).match(/<path/g) ?? []).length).toBeGreaterThan(3);
  }, 60_000);

  it('says what is missing for a folder without epochs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt12-run-'));
    expect(existsSync(join(dir, 'metrics.jsonl'))).toBe(false);
    expect(() => runReportHtml(dir)).toThrow(/has no epochs in metrics.jsonl yet: nothing to report/);
  });
});
