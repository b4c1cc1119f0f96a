// The one GEMM: OpenBLAS kernels, run single-threaded inside each of ikun's pool threads on a block of
// the output. Letting OpenBLAS run its own threads beside ikun's pool made the two spin against each
// other (half the CPU time went to sched_yield on a 2-core machine).
#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "kernels.h"
#include "parallel.h"

extern "C" void openblas_set_num_threads(int threads);

namespace ikun::cpu {
namespace {

void singleThreadedBlas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

inline void blasGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                     const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

inline void blasGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                     const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

constexpr int64_t kMinBlock = 64;  // narrowest output block worth a thread

}  // namespace

template <class T>
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  singleThreadedBlas();
  if (m == 0 || n == 0) return;
  // Called from inside a parallel task (a conv2d sample group), the blocks would run one after the other
  // on this thread anyway: one BLAS call on the whole output is then cheaper.
  const int64_t threads = insideParallelRegion() ? 1 : threadCount();
  if (n >= m || n >= threads * kMinBlock) {
    // Column blocks of C: columns n0.. of op(B).
    const int64_t block = std::max(kMinBlock, (n + threads - 1) / threads);
    parallelFor((n + block - 1) / block, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t n0 = i * block, width = std::min(block, n - n0);
        blasGemm(transA, transB, m, width, k, alpha, a, lda, transB ? b + n0 * ldb : b + n0, ldb, beta, c + n0, ldc);
      }
    });
  } else {
    // Row blocks of C: rows m0.. of op(A).
    const int64_t block = std::max(kMinBlock, (m + threads - 1) / threads);
    parallelFor((m + block - 1) / block, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t m0 = i * block, height = std::min(block, m - m0);
        blasGemm(transA, transB, height, n, k, alpha, transA ? a + m0 : a + m0 * lda, lda, b, ldb, beta, c + m0 * ldc, ldc);
      }
    });
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace ikun::cpu
