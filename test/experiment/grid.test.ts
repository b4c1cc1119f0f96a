import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GRID, checkSpec, gridPoints, planExperiment, pointAt, pointConfig, writeExperiment, type ExperimentSpec } from '../../lib/experiment/grid.js';

const spec = (over: Partial<ExperimentSpec> = {}): ExperimentSpec => ({ inits: ['ikun_v1', 'kaiming'], opts: ['sgd'], seeds: [1, 2], config: { sample: true, epochs: 1 }, hessian: null, ...over });

describe('the experiment grid', () => {
  it("defaults to the paper's six inits, sgd and adam, seeds 1,2,3", () => {
    expect(DEFAULT_GRID.inits).toEqual(['xavier', 'kaiming', 'normal', 'lecun', 'ikun_v1', 'ikun_v2']);
    expect(DEFAULT_GRID.opts).toEqual(['sgd', 'adam']);
    expect(DEFAULT_GRID.seeds).toEqual([1, 2, 3]);
    expect(gridPoints(DEFAULT_GRID)).toHaveLength(36);
  });

  it('orders points init, optimiser, seed and names their folders runs/<init>-<opt>-s<seed>', () => {
    expect(gridPoints({ inits: ['ikun_v1', 'kaiming'], opts: ['sgd', 'adam'], seeds: [1, 2] }).map((p) => `${p.index}:${p.run}`)).toEqual([
      '0:runs/ikun_v1-sgd-s1', '1:runs/ikun_v1-sgd-s2', '2:runs/ikun_v1-adam-s1', '3:runs/ikun_v1-adam-s2',
      '4:runs/kaiming-sgd-s1', '5:runs/kaiming-sgd-s2', '6:runs/kaiming-adam-s1', '7:runs/kaiming-adam-s2',
    ]);
    const p = gridPoints(spec())[3]!;
    expect(pointConfig(spec(), p, '/x')).toEqual({ sample: true, epochs: 1, init: 'kaiming', opt: 'sgd', seed: 2, out: '/x/runs/kaiming-sgd-s2' });
  });

  it('refuses repeats, unknown names, grid keys in the shared config and bad train values', () => {
    expect(() => checkSpec(spec({ seeds: [1, 1] }))).toThrow(/seeds lists 1 twice/);
    expect(() => checkSpec(spec({ inits: [] }))).toThrow(/inits must list at least one value/);
    expect(() => checkSpec(spec({ inits: ['he' as never] }))).toThrow(/unknown init "he"; choose from/);
    expect(() => checkSpec(spec({ config: { init: 'kaiming' } }))).toThrow(/cannot set init: the grid sets it per point/);
    expect(() => checkSpec(spec({ config: { epochs: 0 } }))).toThrow(/epochs must be an integer >= 1/);
  });

  it('continues a folder with the same settings and refuses other ones before writing anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt12-grid-'));
    const first = planExperiment(dir, spec());
    expect(first.existing).toBe(false);
    expect(existsSync(join(dir, 'experiment.json'))).toBe(false); // planning writes nothing
    writeExperiment(dir, first.file);
    expect(planExperiment(dir, spec()).existing).toBe(true);
    expect(() => planExperiment(dir, spec({ config: { sample: true, epochs: 2 } }))).toThrow(/holds an experiment with other settings \(config: folder .*"epochs":1.*now .*"epochs":2.*choose another --out/);
    expect(() => pointAt(first.file, 4)).toThrow(/--index must be an integer in \[0, 3\] \(the grid has 4 points\), got 4/);
  });
});
