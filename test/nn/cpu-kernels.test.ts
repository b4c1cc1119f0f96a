// The neuron kernels exist in a baseline (x86-64-v2) and an AVX2 build; both must give the same numbers,
// bit for bit, in every mode. Skipped where this CPU or build has no AVX2 kernels.
import { afterAll, describe, expect, it } from 'vitest';
import { functional as F, getCpuKernels, setCpuKernels, surrogate, tensor, type Tensor } from '../../lib/index.js';
import { native, type NeuronParamsNative } from '../../lib/native.js';
import { SURROGATE_NAMES } from '../../lib/surrogate.js';
import { randomArray } from '../helpers/gradcheck.js';

const info = getCpuKernels();
const initial = info.active;
afterAll(() => setCpuKernels(initial));

function input(shape: number[], seed: number, dtype: 'float32' | 'float64', scale = 1.5, offset = 0.7): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = randomArray(size, seed, scale, offset);
  return tensor(dtype === 'float32' ? Float32Array.from(data) : data, shape, { dtype });
}

const arrays = (...ts: Tensor[]): number[][] => ts.map((t) => Array.from(t.toArray()));

// Every neuron kernel, run once with the current kernels; returns all their outputs.
function runAll(p: NeuronParamsNative, dtype: 'float32' | 'float64'): { arrays: number[][]; count: number } {
  const [steps, n, c, h, w] = [3, 2, 3, 6, 10]; // 60-pixel planes: not a multiple of the vector width
  const stepShape = [n, c, h, w];
  const x = input(p.staticInput ? stepShape : [steps, ...stepShape], 1, dtype);
  const params = { ...p, steps, width: n * c * h * w };
  const { spikes, h: membrane } = F.neuronForward(x, params);
  const dSpikes = input([steps, ...stepShape], 2, dtype, 1, 0.5);
  const dx = F.neuronBackward(membrane, dSpikes, params);
  const xDot = input(x.shape as number[], 3, dtype, 1, 0.5);
  const { hDot, sDot } = F.neuronForwardTangent(membrane, xDot, params);
  const dSpikesDot = input([steps, ...stepShape], 4, dtype, 1, 0.5);
  const [dxT, dxDot] = F.neuronBackwardTangent(membrane, hDot, dSpikes, dSpikesDot, params);
  const fused = F.neuronPoolForward(x, params, 2, 2);
  const dPooled = input(fused.pooled.shape as number[], 5, dtype, 1, 0.5);
  const dxFused = F.neuronPoolBackward(fused.ctx, dPooled);
  return { arrays: arrays(spikes, membrane, dx, hDot, sDot, dxT, dxDot, fused.pooled, dxFused), count: native.sum(fused.spikeCounts.storage) };
}

describe.skipIf(!info.avx2)('AVX2 and baseline neuron kernels', () => {
  const cases: Array<[string, NeuronParamsNative]> = [];
  for (const name of SURROGATE_NAMES)
    for (const spiking of [true, false])
      for (const soft of [false, true])
        for (const detachReset of [false, true]) {
          const s = surrogate.create(name, { spiking });
          const base = { surrogate: s.code, alpha: s.alpha, spiking, detachReset, vThreshold: 1, vReset: soft ? null : 0.1,
            steps: 0, width: 0 };
          cases.push([`IF ${name} spiking=${spiking} soft=${soft} detach=${detachReset}`,
            { ...base, kind: 0, tau: 2, decayInput: true, staticInput: false }]);
          cases.push([`LIF ${name} spiking=${spiking} soft=${soft} detach=${detachReset} static input`,
            { ...base, kind: 1, tau: 1.7, decayInput: !soft, staticInput: true }]);
        }

  it.each(cases)('%s: same numbers bit for bit (float32 and float64)', (_, params) => {
    for (const dtype of ['float32', 'float64'] as const) {
      setCpuKernels('baseline');
      const expected = runAll(params, dtype);
      setCpuKernels('avx2');
      expect(getCpuKernels().active).toBe('avx2');
      const actual = runAll(params, dtype);
      expect(actual.count).toBe(expected.count);
      actual.arrays.forEach((a, i) => expect(a, `output ${i} (${dtype})`).toEqual(expected.arrays[i]));
    }
  });
});

describe('CPU kernel selection', () => {
  it('reports what runs and rejects unknown names', () => {
    expect(['avx2', 'baseline']).toContain(getCpuKernels().active);
    expect(() => setCpuKernels('sse' as 'avx2')).toThrow(/kernels must be 'avx2' or 'baseline', got "sse"|got 'sse'/);
    setCpuKernels('baseline');
    expect(getCpuKernels().active).toBe('baseline');
    if (!getCpuKernels().avx2) expect(() => setCpuKernels('avx2')).toThrow(/AVX2/);
    setCpuKernels(initial);
  });
});
