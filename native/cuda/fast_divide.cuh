// Division by a divisor fixed for a whole launch (a plane's width, a kernel's taps), as one widening
// multiply and a shift instead of the ~20-instruction integer division of the GPU. The implicit-GEMM
// loaders of conv2d.cu split an index into (sample, row, column) for every element they read, so these
// divisions were most of their instructions.
//
// Granlund and Montgomery (1994), theorem 4.2, with N = 31: for 1 <= d <= 2^31, l = ceil(log2 d) and
// m = ceil(2^(31 + l) / d), floor(n / d) = floor(m n / 2^(31 + l)) for every 0 <= n < 2^31 (m d exceeds
// 2^(31 + l) by less than d <= 2^l), and m < 2^32. The callers' indices are below 2^31 (conv2d.cu checks
// its tensor sizes), which is what the theorem asks of n.
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
    shift_ = 31 + l;
    multiplier_ = uint32_t(((uint64_t(1) << shift_) + divisor - 1) / divisor);
  }
  // floor(n / divisor) for n < 2^31.
  __host__ __device__ __forceinline__ uint32_t divide(uint32_t n) const { return uint32_t((uint64_t(n) * multiplier_) >> shift_); }
  // n = quotient * divisor + remainder.
  __host__ __device__ __forceinline__ uint32_t split(uint32_t n, uint32_t& remainder) const {
    const uint32_t q = divide(n);
    remainder = n - q * divisor_;
    return q;
  }
  __host__ __device__ __forceinline__ uint32_t divisor() const { return divisor_; }

 private:
  uint32_t divisor_ = 1, multiplier_ = uint32_t(1) << 31, shift_ = 31;
};

}  // namespace ikun::cuda
