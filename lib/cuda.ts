// The CUDA devices as a user sees them (PyTorch's torch.cuda names): whether one is usable, which, the
// caching allocator's memory statistics and cache, and waiting for queued work. Kernels run through the
// ops of every tensor on a CUDA device; this module only describes and manages the devices.
import { native, type CudaDeviceInfo, type CudaMemoryStats, type CudaRuntimeCounters } from './native.js';
import { checkInteger, fail } from './errors.js';
import { cudaUnavailableReason } from './tensor.js';

export type { CudaDeviceInfo, CudaMemoryStats, CudaRuntimeCounters } from './native.js';

/** Whether at least one CUDA device can be used (this build has CUDA, a driver and a GPU are present). */
export function isAvailable(): boolean {
  return native.cudaDeviceCount() > 0;
}

/** The number of CUDA devices ikun can use (0 without a GPU, a driver or a CUDA build). */
export function deviceCount(): number {
  return native.cudaDeviceCount();
}

/** Why no CUDA device can be used, in one sentence ('' when one can). */
export function unavailableReason(): string {
  return isAvailable() ? '' : cudaUnavailableReason();
}

/** True when ikun runs the emulated CUDA device of its tests (IKUN_CUDA_EMULATE=1): kernels on host threads. */
export function isEmulated(): boolean {
  return native.cudaEmulated();
}

function checkedIndex(what: string, index: unknown): number {
  const i = checkInteger(`cuda.${what}: device`, index, 0);
  const count = native.cudaDeviceCount();
  if (count === 0) fail(`cuda.${what}: no CUDA device can be used: ${cudaUnavailableReason()}`);
  if (i >= count) fail(`cuda.${what}: cuda:${i} does not exist (${count} CUDA device${count === 1 ? '' : 's'} visible)`);
  return i;
}

/** The device's name (the emulated device of the tests says that it is one). */
export function deviceName(index = 0): string {
  return native.cudaDeviceInfo(checkedIndex('deviceName', index)).name;
}

/** Name, memory, compute capability and multiprocessor count of a device. */
export function getDeviceProperties(index = 0): CudaDeviceInfo {
  return native.cudaDeviceInfo(checkedIndex('getDeviceProperties', index));
}

/** Bytes held by live tensors (allocated), with the allocator's cache (reserved), and the peak of allocated. */
export function memoryStats(index = 0): CudaMemoryStats {
  return native.cudaMemoryStats(checkedIndex('memoryStats', index));
}

/**
 * What the host asked of the device since the process started: kernels launched, memsets and copies, the
 * times it waited for the device and the cudaMalloc calls of the caching allocator. The difference over a
 * training step shows whether the step only queues work (no waits, no allocations once the cache is warm).
 * Reading them does not wait for the device.
 */
export function runtimeCounters(index = 0): CudaRuntimeCounters {
  return native.cudaRuntimeCounters(checkedIndex('runtimeCounters', index));
}

/** Starts the peak of memoryStats() again from what is allocated now. */
export function resetPeakMemoryStats(index = 0): void {
  native.cudaResetPeakMemory(checkedIndex('resetPeakMemoryStats', index));
}

/** Waits until every kernel and copy queued on the device has finished (and reports a failed one). */
export function synchronize(index = 0): void {
  native.cudaSynchronize(checkedIndex('synchronize', index));
}

/** Gives the cached blocks of the allocator back to the device (memory held by live tensors stays). */
export function emptyCache(index = 0): void {
  native.cudaEmptyCache(checkedIndex('emptyCache', index));
}
