// The fragment-layout check of the tensor-core wrappers (mma.cuh): one warp multiplies known matrices with
// the real instruction (or, in the emulated build, its emulation), every lane loading and storing its
// fragments by the layout the PTX ISA documents. Small integers are exact in TF32 and bf16 and their products
// sum exactly in fp32, so any difference from the exact product means the layout (or the emulation) is wrong.
// Both wrappers are checked: mmaTf32 (m16n8k8) and mmaBf16 (m16n8k16).
// gpu-check runs it first on a real GPU: it validates the emulation the test suite relies on.
#include <cmath>
#include <vector>

#include "common.cuh"
#include "mma.cuh"

namespace ikun::cuda {
namespace mma_check {

// The C and D fragment layout both shapes share: element (g or g + 8, 2t or 2t + 1) of a 16x8 matrix M.
__device__ __forceinline__ int accumulatorIndex(unsigned lane, int r) {
  const int g = int(lane / 4), t = int(lane % 4);
  return (g + (r >= 2 ? 8 : 0)) * 8 + 2 * t + (r & 1);
}

// Runs one wrapper on the lane's fragments and C, and stores D by the accumulator layout.
template <class Mma>
__device__ __forceinline__ void multiplyAndStore(Mma mma, unsigned lane, const uint32_t a[4], const uint32_t b[2], const float* C, float* D) {
  float c[4], d[4];
  for (int r = 0; r < 4; ++r) c[r] = C[accumulatorIndex(lane, r)];
  mma(d, a, b, c);
  for (int r = 0; r < 4; ++r) D[accumulatorIndex(lane, r)] = d[r];
}

__global__ void mmaLayoutKernel(const float* A, const float* B, const float* C, float* D) {
  const unsigned lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  uint32_t a[4] = {toTf32(A[g * 8 + t]), toTf32(A[(g + 8) * 8 + t]), toTf32(A[g * 8 + t + 4]), toTf32(A[(g + 8) * 8 + t + 4])};
  uint32_t b[2] = {toTf32(B[t * 8 + g]), toTf32(B[(t + 4) * 8 + g])};
  multiplyAndStore([](float* d, const uint32_t* x, const uint32_t* y, const float* c) { mmaTf32(d, x, y, c); }, lane, a, b, C, D);
}

// A is 16x16 and B 16x8 here (k = 16).
__global__ void mmaBf16LayoutKernel(const float* A, const float* B, const float* C, float* D) {
  const unsigned lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  auto pairOfA = [&](unsigned row, unsigned k) { return packBf16x2(A[row * 16 + k], A[row * 16 + k + 1]); };
  auto pairOfB = [&](unsigned k, unsigned col) { return packBf16x2(B[k * 8 + col], B[(k + 1) * 8 + col]); };
  uint32_t a[4] = {pairOfA(g, 2 * t), pairOfA(g + 8, 2 * t), pairOfA(g, 2 * t + 8), pairOfA(g + 8, 2 * t + 8)};
  uint32_t b[2] = {pairOfB(2 * t, g), pairOfB(2 * t + 8, g)};
  multiplyAndStore([](float* d, const uint32_t* x, const uint32_t* y, const float* c) { mmaBf16(d, x, y, c); }, lane, a, b, C, D);
}

// The largest error of one wrapper's kernel on known 16 x depth by depth x 8 matrices.
template <class Kernel>
double layoutError(Kernel kernel, int depth) {
  std::vector<float> A(16 * depth), B(depth * 8), C(16 * 8), D(16 * 8, NAN);
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < depth; ++k) A[i * depth + k] = float((i * 7 + k * 3) % 11 - 5);
  for (int k = 0; k < depth; ++k)
    for (int j = 0; j < 8; ++j) B[k * 8 + j] = float((k * 5 + j * 2) % 9 - 4);
  for (int i = 0; i < 16 * 8; ++i) C[i] = float(i % 13 - 6);
  const int device = currentDevice();
  DeviceBlock a(device, A.size() * sizeof(float)), b(device, B.size() * sizeof(float)), c(device, C.size() * sizeof(float)),
      d(device, D.size() * sizeof(float));
  copyHostToDevice(device, a.get(), A.data(), A.size() * sizeof(float));
  copyHostToDevice(device, b.get(), B.data(), B.size() * sizeof(float));
  copyHostToDevice(device, c.get(), C.data(), C.size() * sizeof(float));
  launch(kernel, dim3(1), dim3(32), 0, currentStream(), a.as<float>(), b.as<float>(), c.as<float>(), d.as<float>());
  copyDeviceToHost(device, D.data(), d.get(), D.size() * sizeof(float));
  double worst = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double exact = C[i * 8 + j];
      for (int k = 0; k < depth; ++k) exact += double(A[i * depth + k]) * double(B[k * 8 + j]);
      const double error = std::fabs(double(D[i * 8 + j]) - exact);
      worst = std::isnan(error) ? INFINITY : std::fmax(worst, error);
    }
  return worst;
}

}  // namespace mma_check

MmaLayoutErrors mmaLayoutCheck() {
  return MmaLayoutErrors{mma_check::layoutError(mma_check::mmaLayoutKernel, 8), mma_check::layoutError(mma_check::mmaBf16LayoutKernel, 16)};
}

}  // namespace ikun::cuda
