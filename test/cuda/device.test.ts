// Device tensors, moving models and optimisers, the caching allocator and its errors, on the emulated CUDA
// device (IKUN_CUDA_EMULATE=1, IKUN_EMULATED_MEMORY_MB from vitest.config.ts).
import { describe, expect, it } from 'vitest';
import { cuda, getCudaPrecision, loss, models, native, optim, setCudaPrecision, surrogate, tensor, zeros, Tensor, functional as F, type CudaPrecision } from '../../lib/index.js';

const values = (t: Tensor): number[] => Array.from(t.toArray());

describe('CUDA tensors', () => {
  it('are made on a device, read back, copied across devices and converted', () => {
    const t = tensor([1, 2, 3, 4, 5, 6], [2, 3], { device: 'cuda' });
    expect(t.device).toBe('cuda:0');
    expect(values(t)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(zeros([2], { device: 'cuda:0', dtype: 'float64' }).toArray()).toEqual(new Float64Array([0, 0]));
    const host = t.to('cpu');
    expect(host.device).toBe('cpu');
    expect(values(host)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.to('cuda')).toBe(t); // nothing to change: the tensor itself, as PyTorch
    const d64 = t.to({ dtype: 'float64' });
    expect(d64.device).toBe('cuda:0');
    expect(d64.toArray()).toEqual(new Float64Array([1, 2, 3, 4, 5, 6]));
    const back = host.cuda();
    expect(back.device).toBe('cuda:0');
    expect(values(back.cpu())).toEqual([1, 2, 3, 4, 5, 6]);
    const target = zeros([6], { device: 'cuda' });
    target.copyFrom(host); // host to device
    expect(values(target)).toEqual([1, 2, 3, 4, 5, 6]);
    host.copyFrom(d64.reshape([6]).to({ dtype: 'float32' }).fill(7)); // device to host
    expect(values(host)).toEqual([7, 7, 7, 7, 7, 7]);
    target.copyFrom(new Float32Array([6, 5, 4, 3, 2, 1]));
    expect(tensor([9], [], { device: 'cuda' }).item()).toBe(9);
    expect(values(target.clone())).toEqual([6, 5, 4, 3, 2, 1]);
    expect(String(t)).toMatch(/device=cuda:0/);
  });

  it('refuse devices that do not exist and bad to() targets, naming what to use', () => {
    expect(() => zeros([2], { device: 'cuda:3' })).toThrow(/'cuda:3' does not exist: 1 CUDA device is visible \(cuda:0\)/);
    expect(() => zeros([2]).to('tpu' as never)).toThrow(/expected a dtype \('float32', 'float64', 'int32'\), a device \('cpu', 'cuda', 'cuda:N'\) or \{ dtype, device \}/);
    expect(() => zeros([2]).to({ device: 'cuda', colour: 1 } as never)).toThrow(/unknown option 'colour'/);
  });

  it('ops on tensors of different devices say which devices', () => {
    const a = zeros([4], { device: 'cuda' }), b = zeros([4]);
    expect(() => F.addInto(a, b)).toThrow(/different devices \((cpu and cuda:0|cuda:0 and cpu)\); move them to one device with .to\(device\)/);
    const conv = models.csnn({ channels: 2, T: 2 });
    expect(() => conv.forward(zeros([1, 1, 28, 28], { device: 'cuda' }))).toThrow(/cuda:0.*cpu|cpu.*cuda:0/);
  });

  it('out of memory is an Error saying how much was asked, what is in use and what to do; the process stays usable', () => {
    const keep = zeros([1 << 20], { device: 'cuda' }); // 4 MiB held
    let message = '';
    try {
      zeros([2 ** 31], { device: 'cuda' }); // 8 GiB
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/CUDA out of memory on cuda:0: could not allocate 8\.00 GiB/);
    expect(message).toMatch(/tensors hold [0-9.]+ MiB/);
    expect(message).toMatch(/smaller batch/);
    const after = tensor([1, 2], [2], { device: 'cuda' });
    expect(values(after)).toEqual([1, 2]);
    keep.dispose();
  });

  it('the caching allocator reuses blocks and reports allocated, reserved and peak bytes', () => {
    cuda.emptyCache();
    const before = cuda.memoryStats();
    const t = zeros([1 << 18], { device: 'cuda' }); // 1 MiB
    const during = cuda.memoryStats();
    expect(during.allocated - before.allocated).toBe(1 << 20);
    expect(during.peakAllocated).toBeGreaterThanOrEqual(during.allocated);
    t.dispose();
    const after = cuda.memoryStats();
    expect(after.allocated).toBe(before.allocated);
    expect(after.reserved).toBeGreaterThanOrEqual(before.reserved + (1 << 20)); // cached, not freed
    const again = zeros([1 << 18], { device: 'cuda' });
    expect(cuda.memoryStats().reserved).toBe(after.reserved); // the cached block came back
    again.dispose();
    cuda.emptyCache();
    expect(cuda.memoryStats().reserved).toBe(cuda.memoryStats().allocated);
    cuda.resetPeakMemoryStats();
    expect(cuda.memoryStats().peakAllocated).toBe(cuda.memoryStats().allocated);
    cuda.synchronize();
  });

  it('runtimeCounters() counts launches, memsets, copies, waits and cudaMalloc calls, and reading them waits for nothing', () => {
    cuda.emptyCache();
    const diff = (a: cuda.CudaRuntimeCounters, b: cuda.CudaRuntimeCounters): Record<string, number> =>
      Object.fromEntries(Object.keys(a).map((k) => [k, b[k as keyof typeof b] - a[k as keyof typeof a]]));
    let start = cuda.runtimeCounters();
    expect(diff(start, cuda.runtimeCounters())).toEqual({ kernelLaunches: 0, memoryOps: 0, hostToDeviceCopies: 0, deviceToHostCopies: 0, hostWaits: 0, deviceAllocations: 0 });
    const x = zeros([1000], { device: 'cuda' }); // a fresh block (the cache is empty) and a memset
    expect(diff(start, cuda.runtimeCounters())).toMatchObject({ deviceAllocations: 1, memoryOps: 1, kernelLaunches: 0, hostWaits: 0 });
    start = cuda.runtimeCounters();
    x.copyFrom(new Float32Array(1000).fill(2)); // one upload, no wait
    const y = x.add(x); // one kernel; its block comes from the allocator (a second, fresh one)
    expect(diff(start, cuda.runtimeCounters())).toMatchObject({ hostToDeviceCopies: 1, kernelLaunches: 1, deviceAllocations: 1, hostWaits: 0 });
    start = cuda.runtimeCounters();
    expect(y.toArray()[999]).toBe(4); // a read: one copy back, which waits
    cuda.synchronize();
    expect(diff(start, cuda.runtimeCounters())).toMatchObject({ deviceToHostCopies: 1, hostWaits: 2, kernelLaunches: 0 });
    x.dispose();
    start = cuda.runtimeCounters();
    zeros([1000], { device: 'cuda' }).dispose(); // x's block from the cache: no cudaMalloc
    expect(diff(start, cuda.runtimeCounters()).deviceAllocations).toBe(0);
    y.dispose();
    expect(() => cuda.runtimeCounters(1)).toThrow(/cuda:1 does not exist/);
  });

  it('a convolution of 32768 pixels per side (with padding) is refused on CUDA, saying what', () => {
    const x = zeros([1, 1, 1, 32768], { device: 'cuda' }), w = zeros([1, 1, 1, 1], { device: 'cuda' });
    expect(() => F.conv2dForward(x, w, null, { stride: 1, padding: 0 })).toThrow(/32768 pixels or more per side are not supported on CUDA/);
    const fits = zeros([1, 1, 1, 32766], { device: 'cuda' });
    expect(F.conv2dForward(fits, w, null, { stride: 1, padding: 0 }).shape).toEqual([1, 1, 1, 32766]);
    for (const t of [x, w, fits]) t.dispose();
  });

  it('reductions give the same bits every run', () => {
    const x = tensor(Float32Array.from({ length: 100_003 }, (_, i) => Math.sin(i) * 1e3), [100_003], { device: 'cuda' });
    const first = native.sum(x.storage);
    for (let i = 0; i < 3; i++) expect(native.sum(x.storage)).toBe(first);
  });
});

describe('models and optimisers on CUDA', () => {
  it('model.to(device) moves parameters, gradients and buffers in place; an optimiser built after keeps its state there', () => {
    const m = models.csnn({ channels: 2, T: 2, surrogate: surrogate.atan({ spiking: false }) });
    const weight = m.namedParameters()[0]![1];
    expect(m.to('cuda')).toBe(m);
    expect(m.namedParameters()[0]![1]).toBe(weight); // the same Parameter object
    for (const [, p] of m.namedParameters()) expect([p.device, p.grad?.device]).toEqual(['cuda:0', 'cuda:0']);
    for (const [name, b] of m.namedBuffers()) {
      expect(b.device).toBe('cuda:0');
      if (name.endsWith('num_batches_tracked')) expect(b.dtype).toBe('float64');
    }
    expect(m.device).toBe('cuda:0');
    const opt = new optim.Adam(m.namedParameters(), { lr: 1e-3 });
    const x = tensor(new Float32Array(2 * 784).fill(0.5), [2, 1, 28, 28], { device: 'cuda' });
    opt.zeroGrad();
    m.backward(loss.mseRate(m.forward(x), [1, 2]).grad);
    opt.step();
    const state = opt.stateDict().tensors;
    expect(state.find(([n]) => n.endsWith('exp_avg'))![1].device).toBe('cuda:0');
    expect(state.find(([n]) => n.endsWith('.step'))![1].device).toBe('cpu'); // as PyTorch keeps it
    // every BatchNorm counted the step once, in its statistics launch (conv_fc.1 in the fused first block)
    for (const [name, b] of m.namedBuffers()) if (name.endsWith('num_batches_tracked')) expect([name, b.item()]).toEqual([name, 1]);
    const onCuda = (shape: number[]): Tensor => zeros(shape, { device: 'cuda' });
    expect(() => F.batchNormForward(onCuda([2, 2, 2, 2]), onCuda([2]), onCuda([2]), onCuda([2]), onCuda([2]), true, 0.1, 1e-5, 1,
      zeros([], { dtype: 'float64' }))).toThrow(/tensors on different devices \(cuda:0 and cpu\)/);
    m.to('cpu');
    expect(() => opt.step()).toThrow(/is on cuda:0 but parameter .* is on cpu; build the optimiser after moving the model/);
    m.to('float64');
    expect(weight.dtype).toBe('float64');
    expect(m.namedBuffers().find(([n]) => n === 'conv_fc.1.num_batches_tracked')![1].dtype).toBe('float64');
  });

  it('models.csnn({ device: "cuda" }) trains on the device', () => {
    const m = models.csnn({ channels: 2, T: 2, device: 'cuda' });
    for (const p of m.parameters()) expect(p.device).toBe('cuda:0');
    const x = tensor(new Float32Array(3 * 784).map((_, i) => (i % 13) / 13), [3, 1, 28, 28], { device: 'cuda' });
    const rate = m.forward(x);
    expect(rate.device).toBe('cuda:0');
    const rates = m.lastFiringRates();
    expect(Object.keys(rates)).toHaveLength(4);
    for (const r of Object.values(rates)) expect(r).toBeGreaterThanOrEqual(0);
  });
});

describe('fused neuron + max-pool spike counts', () => {
  it('are left on the device as one partial count per block, in the kernel\'s one launch: their sum is the CPU count', () => {
    // [T 2, N 2, C 40, 16, 16]: 5120 windows, 20 blocks of 256, so the count has 20 parts
    const x = tensor(Float32Array.from({ length: 2 * 2 * 40 * 256 }, (_, i) => ((i * 37) % 29) / 16), [2, 2, 40, 16, 16]);
    const s = surrogate.atan();
    const params = { kind: 0 as const, vThreshold: 1, vReset: 0, tau: 2, decayInput: true, detachReset: false, surrogate: s.code,
      alpha: s.alpha, spiking: true, staticInput: false, steps: 2, width: 2 * 40 * 256 };
    const onCpu = F.neuronPoolForward(x, params, 2, 2);
    expect(onCpu.spikeCounts.shape).toEqual([1]);
    const count = onCpu.spikeCounts.item();
    expect(count).toBeGreaterThan(100);
    const xOnCuda = x.to('cuda');
    cuda.synchronize();
    const start = cuda.runtimeCounters();
    const onCuda = F.neuronPoolForward(xOnCuda, params, 2, 2);
    const used = cuda.runtimeCounters();
    expect([used.kernelLaunches - start.kernelLaunches, used.memoryOps - start.memoryOps, used.hostWaits - start.hostWaits]).toEqual([1, 0, 0]);
    expect(onCuda.spikeCounts.shape).toEqual([20]);
    expect(onCuda.spikeCounts.device).toBe('cuda:0');
    expect(onCuda.spikeCounts.dtype).toBe('float64');
    expect(Array.from(onCuda.spikeCounts.toArray()).reduce((a, b) => a + b, 0)).toBe(count);
    expect(native.sum(onCuda.spikeCounts.storage)).toBe(count);
    expect(values(onCuda.pooled)).toEqual(values(onCpu.pooled));
    // 3x3 windows take the unfused twin: one value
    expect(F.neuronPoolForward(xOnCuda, params, 3, 2).spikeCounts.shape).toEqual([1]);
  });
});

describe('tensor cores', () => {
  it('the emulated mma.m16n8k8 (TF32) and mma.m16n8k16 (bf16) follow the fragment layouts of the PTX ISA (exact on small integers)', () => {
    expect(native.cudaMmaLayoutCheck(0)).toEqual({ tf32: 0, bf16: 0 });
  });

  it('setCudaPrecision switches float32 convolutions between TF32 tensor cores, exact fp32 and bf16 tensor cores', () => {
    const x = tensor(Float32Array.from({ length: 2 * 3 * 9 * 9 }, (_, i) => Math.sin(i)), [2, 3, 9, 9]);
    const w = tensor(Float32Array.from({ length: 5 * 3 * 3 * 3 }, (_, i) => Math.cos(i)), [5, 3, 3, 3]);
    const reference = F.conv2dForward(x, w, null, { stride: 1, padding: 1 }).toArray();
    const errorWith = (precision: CudaPrecision): number => {
      setCudaPrecision(precision);
      const y = F.conv2dForward(x.to('cuda'), w.to('cuda'), null, { stride: 1, padding: 1 }).toArray();
      let diff = 0, scale = 0;
      for (let i = 0; i < y.length; i++) diff = Math.max(diff, Math.abs(y[i]! - reference[i]!)), scale = Math.max(scale, Math.abs(reference[i]!));
      return diff / scale;
    };
    expect(getCudaPrecision()).toBe('tf32');
    const tf32 = errorWith('tf32'), fp32 = errorWith('fp32'), bf16 = errorWith('bf16');
    expect(getCudaPrecision()).toBe('bf16');
    expect(fp32).toBeLessThan(1e-5);
    expect(tf32).toBeLessThan(5e-3);
    expect(tf32).toBeGreaterThan(1e-5); // TF32 rounds the inputs to 10 mantissa bits: it is not the fp32 path
    expect(bf16).toBeLessThan(3e-2);
    expect(bf16).toBeGreaterThan(2 * tf32); // bf16 keeps 7 mantissa bits: it is not the TF32 path
    setCudaPrecision('tf32');
    expect(() => setCudaPrecision('fp16' as never)).toThrow(/precision must be 'tf32', 'fp32' or 'bf16', got "fp16"/);
    expect(() => native.cudaSetPrecision('fp16' as never)).toThrow(/precision must be 'tf32', 'fp32' or 'bf16'/);
    expect(getCudaPrecision()).toBe('tf32');
  });
});
