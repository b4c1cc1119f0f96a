// gemm(): dense row-major C = alpha op(A) op(B) + beta C on the tile kernel of gemm.cuh (the twin of
// cpu/gemm.cpp; the benchmark measures its rate).
#include "gemm.cuh"

namespace ikun::cuda {

template <class T>
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  const MatrixStore<T> store{c, ldc, alpha, beta};
  // one kernel per transposition pair, so that every operand's reader knows its stride at compile time
  if (!transA && !transB) gemmLaunch<T>(m, n, k, DenseMatrix<T, false>{a, lda}, DenseMatrix<T, false>{b, ldb}, store);
  else if (!transA) gemmLaunch<T>(m, n, k, DenseMatrix<T, false>{a, lda}, DenseMatrix<T, true>{b, ldb}, store);
  else if (!transB) gemmLaunch<T>(m, n, k, DenseMatrix<T, true>{a, lda}, DenseMatrix<T, false>{b, ldb}, store);
  else gemmLaunch<T>(m, n, k, DenseMatrix<T, true>{a, lda}, DenseMatrix<T, true>{b, ldb}, store);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace ikun::cuda
