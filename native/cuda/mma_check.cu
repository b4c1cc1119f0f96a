// The fragment-layout check of the tensor-core wrappers (mma.cuh): one warp multiplies known matrices with
// the real instruction (or, in the emulated build, its emulation), every lane loading and storing its
// fragments by the layout the PTX ISA documents. Small integers are exact in TF32 and their products sum
// exactly in fp32, so any difference from the exact product means the layout (or the emulation) is wrong.
// gpu-check runs it first on a real GPU: it validates the emulation the test suite relies on.
#include <cmath>
#include <vector>

#include "common.cuh"
#include "mma.cuh"

namespace ikun::cuda {
namespace mma_check {

__global__ void mmaLayoutKernel(const float* A, const float* B, const float* C, float* D) {
  const unsigned lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  uint32_t a[4] = {toTf32(A[g * 8 + t]), toTf32(A[(g + 8) * 8 + t]), toTf32(A[g * 8 + t + 4]), toTf32(A[(g + 8) * 8 + t + 4])};
  uint32_t b[2] = {toTf32(B[t * 8 + g]), toTf32(B[(t + 4) * 8 + g])};
  float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
  float d[4];
  mmaTf32(d, a, b, c);
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2];
  D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

}  // namespace mma_check

double mmaLayoutCheck() {
  std::vector<float> A(16 * 8), B(8 * 8), C(16 * 8), D(16 * 8, NAN);
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 8; ++k) A[i * 8 + k] = float((i * 7 + k * 3) % 11 - 5);
  for (int k = 0; k < 8; ++k)
    for (int j = 0; j < 8; ++j) B[k * 8 + j] = float((k * 5 + j * 2) % 9 - 4);
  for (int i = 0; i < 16 * 8; ++i) C[i] = float(i % 13 - 6);
  const int device = currentDevice();
  DeviceBlock a(device, A.size() * sizeof(float)), b(device, B.size() * sizeof(float)), c(device, C.size() * sizeof(float)),
      d(device, D.size() * sizeof(float));
  copyHostToDevice(device, a.get(), A.data(), A.size() * sizeof(float));
  copyHostToDevice(device, b.get(), B.data(), B.size() * sizeof(float));
  copyHostToDevice(device, c.get(), C.data(), C.size() * sizeof(float));
  launch(mma_check::mmaLayoutKernel, dim3(1), dim3(32), 0, currentStream(), a.as<float>(), b.as<float>(), c.as<float>(), d.as<float>());
  copyDeviceToHost(device, D.data(), d.get(), D.size() * sizeof(float));
  double worst = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double exact = C[i * 8 + j];
      for (int k = 0; k < 8; ++k) exact += double(A[i * 8 + k]) * double(B[k * 8 + j]);
      const double error = std::fabs(double(D[i * 8 + j]) - exact);
      worst = std::isnan(error) ? INFINITY : std::fmax(worst, error);
    }
  return worst;
}

}  // namespace ikun::cuda
