// The tensor-core instructions ikun uses, behind __device__ wrappers: inline PTX on the GPU, and in the
// emulated build a host emulation that follows the fragment layouts the PTX ISA documents (9.7.14.5,
// "Matrix Fragments for mma.m16n8k8" with .tf32 operands, and "for mma.m16n8k16 with floating point type"
// with .bf16 ones; .f32 accumulators). gpu-check's fragment-layout test runs the real instructions on known
// matrices first, so a layout the emulation got wrong shows there.
//
// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32: D (16x8) = A (16x8, row) * B (8x8, col) + C. With
// g = lane / 4 and t = lane % 4, a lane holds
//   A: a0 = A[g][t], a1 = A[g + 8][t], a2 = A[g][t + 4], a3 = A[g + 8][t + 4]
//   B: b0 = B[t][g], b1 = B[t + 4][g]
//   C, D: c0 = C[g][2t], c1 = C[g][2t + 1], c2 = C[g + 8][2t], c3 = C[g + 8][2t + 1]
// Operands are TF32 (fp32 with 10 mantissa bits) in 32-bit registers; products are exact in fp32 and the
// sums accumulate in fp32.
//
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: D (16x8) = A (16x16, row) * B (16x8, col) + C, the
// operands bf16 (fp32's exponent, 7 mantissa bits), two to a 32-bit register, the lower k in the low half:
//   A: a0 = A[g][2t, 2t + 1], a1 = A[g + 8][2t, 2t + 1], a2 = A[g][2t + 8, 2t + 9], a3 = A[g + 8][2t + 8, 2t + 9]
//   B: b0 = B[2t, 2t + 1][g], b1 = B[2t + 8, 2t + 9][g]
//   C, D: as above.
// Twice the products of an m16n8k8 per instruction; products of bf16 are exact in fp32.
#pragma once
#include <cstdint>
#include <cstring>

#include "device.cuh"

namespace ikun::cuda {

struct MmaTf32Fragments {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};

// x rounded to TF32 (round to nearest, ties away from zero: PTX cvt.rna.tf32.f32), as the bits of an fp32.
__device__ __forceinline__ uint32_t toTf32(float x) {
#if defined(IKUN_CUDA_EMULATED)
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x7fffffu) ? (u | 0x400000u) & 0xffffe000u : u;  // NaN stays NaN, Inf stays
  return (u + 0x1000u) & 0xffffe000u;  // half of the dropped 13 bits added to the magnitude: ties away from zero
#else
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#endif
}

__device__ __forceinline__ float fromBits(uint32_t u) {
#if defined(IKUN_CUDA_EMULATED)
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#else
  return __uint_as_float(u);
#endif
}

// x rounded to bf16 (round to nearest, ties to even: PTX cvt.rn), as the 16 bits of the result.
__device__ __forceinline__ uint32_t toBf16Bits(float x) {
#if defined(IKUN_CUDA_EMULATED)
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
#else
  const uint32_t u = __float_as_uint(x);
#endif
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (u >> 16) | 0x40u;  // NaN stays NaN (quiet)
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;  // overflows to infinity as round to nearest does
}

// low and high rounded to bf16 and packed into one register, low in the low half (the lower k of a pair).
__device__ __forceinline__ uint32_t packBf16x2(float low, float high) {
#if defined(IKUN_CUDA_EMULATED)
  return toBf16Bits(low) | (toBf16Bits(high) << 16);
#else
  uint32_t r;  // cvt.rn.bf16x2.f32 d, a, b puts a in the upper half and b in the lower
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(high), "f"(low));
  return r;
#endif
}

#if defined(IKUN_CUDA_EMULATED)
namespace mma_emulation {
// One warp-wide mma on the host: each lane posts its registers where the warp can read them, and computes
// its four outputs (the C and D layout above, which both shapes share) from the whole A and B, rebuilt from
// the posted registers by the instruction's layout: elementA(registers, row, col), where registers(lane, r)
// reads register r of a lane (a0..a3 are 0..3, b0 and b1 are 4 and 5).
template <unsigned Depth, class ElementA, class ElementB>
inline void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], ElementA elementA, ElementB elementB) {
  // [warp * 32 + lane][a0..a3, b0, b1]: emulation scratch, not counted as the kernel's shared memory
  IKUN_EMU_SCRATCH_ARRAY2(uint32_t, posted, 32 * 32, 6);
  const unsigned lane = threadIdx.x % 32, base = threadIdx.x / 32 * 32;
  for (int r = 0; r < 4; ++r) posted[base + lane][r] = a[r];
  posted[base + lane][4] = b[0];
  posted[base + lane][5] = b[1];
  __syncwarp();
  auto registers = [&](unsigned of, unsigned r) { return posted[base + of][r]; };
  const unsigned g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const unsigned row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float sum = c[i];
    for (unsigned k = 0; k < Depth; ++k) sum += elementA(registers, row, k) * elementB(registers, k, col);
    d[i] = sum;
  }
  __syncwarp();  // the posted registers may be overwritten by the next call only after every lane read them
}

// The bf16 in the low (high) half of a register, as an fp32.
inline float bf16Half(uint32_t word, unsigned high) { return fromBits((high ? word >> 16 : word & 0xffffu) << 16); }
}  // namespace mma_emulation
#endif

// d = A * B + c for the warp (every lane of a full warp calls it with its fragments).
__device__ __forceinline__ void mmaTf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(IKUN_CUDA_EMULATED)
  mma_emulation::mma<8>(
      d, a, b, c,
      [](auto registers, unsigned row, unsigned col) {  // A[row][col] lives in lane (row % 8) * 4 + col % 4
        return fromBits(registers((row % 8) * 4 + col % 4, (row >= 8 ? 1u : 0u) + (col >= 4 ? 2u : 0u)));
      },
      [](auto registers, unsigned row, unsigned col) {  // B[row][col] lives in lane col * 4 + row % 4
        return fromBits(registers(col * 4 + row % 4, row >= 4 ? 5u : 4u));
      });
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

// d = A * B + c over k = 16 with bf16 operands (layout above), for the warp.
__device__ __forceinline__ void mmaBf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(IKUN_CUDA_EMULATED)
  mma_emulation::mma<16>(
      d, a, b, c,
      [](auto registers, unsigned row, unsigned col) {  // A[row][col] lives in lane (row % 8) * 4 + (col % 8) / 2
        return mma_emulation::bf16Half(registers((row % 8) * 4 + (col % 8) / 2, (row >= 8 ? 1u : 0u) + (col >= 8 ? 2u : 0u)), col % 2);
      },
      [](auto registers, unsigned row, unsigned col) {  // B[row][col] lives in lane col * 4 + (row % 8) / 2
        return mma_emulation::bf16Half(registers(col * 4 + (row % 8) / 2, row >= 8 ? 5u : 4u), row % 2);
      });
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

}  // namespace ikun::cuda
