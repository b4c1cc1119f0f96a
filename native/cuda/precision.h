// The precision of the CUDA convolutions and matrix products, one setting per process (as PyTorch's
// allow_tf32 flags): TF32 tensor cores with fp32 accumulation (the default, as cuDNN's for convolutions),
// the exact fp32 SIMT path, or bf16 tensor cores with fp32 accumulation (mixed precision: tensors, weights
// and sums stay fp32; only the products' inputs are rounded to bf16, twice the tensor-core rate of TF32).
// float64 always runs exact. Plain C++: the bindings set it.
#pragma once

namespace ikun::cuda {

enum class CudaPrecision : int { Tf32 = 0, Fp32 = 1, Bf16 = 2 };

CudaPrecision cudaPrecision();
void setCudaPrecision(CudaPrecision precision);

}  // namespace ikun::cuda
