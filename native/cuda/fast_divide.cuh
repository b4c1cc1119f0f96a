// Division by a divisor fixed for a whole launch (a plane's width, a kernel's taps), as a 32-bit
// multiply-high and two shifts instead of the ~20-instruction integer division of the GPU. The implicit-GEMM
// loaders of conv2d.cu split an index into (sample, row, column) for every element they read, so these
// divisions were most of their instructions.
//
// Granlund and Montgomery (1994), theorem 4.2, with N = 31: for 1 <= d <= 2^31, l = ceil(log2 d) and
// m = ceil(2^(31 + l) / d), floor(n / d) = floor(m n / 2^(31 + l)) for every 0 <= n < 2^31 (m d exceeds
// 2^(31 + l) by less than d <= 2^l), and m < 2^32. The callers' indices are below 2^31 (conv2d.cu checks
// its tensor sizes), which is what the theorem asks of n.
//
// floor(m n / 2^(31 + l)) = floor(floor(2n m / 2^32) / 2^l): the high word of the 32-bit product of 2n (which
// fits, n < 2^31) and m, shifted by l. No 64-bit product or shift (several instructions each on the GPU).
#pragma once
#include <cstdint>
#include <stdexcept>

#include "device.cuh"

namespace ikun::cuda {

class FastDivisor {
 public:
  FastDivisor() = default;
  explicit FastDivisor(uint32_t divisor) : divisor_(divisor) {
    if (divisor < 1 || divisor > (uint32_t(1) << 31)) throw std::invalid_argument("FastDivisor: the divisor must be in [1, 2^31]");
    uint32_t l = 0;
    while ((uint64_t(1) << l) < divisor) ++l;
    shift_ = l;
    multiplier_ = uint32_t(((uint64_t(1) << (31 + l)) + divisor - 1) / divisor);
  }
  // floor(n / divisor) for n < 2^31.
  __host__ __device__ __forceinline__ uint32_t divide(uint32_t n) const { return multiplyHigh(n << 1, multiplier_) >> shift_; }
  // n = quotient * divisor + remainder.
  __host__ __device__ __forceinline__ uint32_t split(uint32_t n, uint32_t& remainder) const {
    const uint32_t q = divide(n);
    remainder = n - q * divisor_;
    return q;
  }
  __host__ __device__ __forceinline__ uint32_t divisor() const { return divisor_; }

 private:
  // the high word of a * b (__umulhi on the GPU; the emulated build runs the host branch)
  __host__ __device__ __forceinline__ static uint32_t multiplyHigh(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return uint32_t((uint64_t(a) * b) >> 32);
#endif
  }
  uint32_t divisor_ = 1, multiplier_ = uint32_t(1) << 31, shift_ = 0;
};

}  // namespace ikun::cuda
