// CUDA kernels: one op family per .cu file, each the twin of the CPU file of the same name, with the same
// signatures as native/cpu/kernels.h where the op returns nothing. Ops that produce a number (a loss, a sum,
// a spike count) deliver it to a DeviceResult instead of returning it, so that a training step can
// accumulate its metrics on the device and never wait for it. Pointers are device pointers of the device
// current on the calling thread (runtime.h, DeviceGuard); work is queued on its stream and this returns
// before it runs. Plain C++: the bindings include this without the CUDA headers.
#pragma once
#include <cstdint>

#include "../common/batchnorm_rules.h"
#include "../common/shapes.h"

namespace ikun::cuda {

// Where a kernel puts a number it computed: *target = value * scale, or += when accumulating. target is a
// double in device memory.
struct DeviceResult {
  double* target;
  double scale;
  bool accumulate;
};

// gemm.cu: C = alpha op(A) op(B) + beta C, row-major (the one GEMM: the SIMT tiles every conv and linear
// op runs through).
template <class T>
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// conv2d.cu (NCHW, weight [out, in, kh, kw]); weight and bias gradients accumulate.
template <class T> void conv2dForward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);
template <class T> void conv2dBackwardInput(const Conv2dShape& s, const T* dy, const T* w, T* dx);
template <class T> void conv2dBackwardWeight(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias);

// linear.cu
template <class T> void linearForward(const LinearShape& s, const T* x, const T* w, const T* bias, T* y);
template <class T> void linearBackwardInput(const LinearShape& s, const T* dy, const T* w, T* dx);
template <class T> void linearBackwardWeight(const LinearShape& s, const T* x, const T* dy, T* dw, T* dbias);

// batchnorm.cu
template <class T>
void batchNormForwardTrain(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* runningMean,
                           T* runningVar, double momentum, double eps, int64_t replicas, T* y, T* savedMean,
                           T* savedInvStd, double* batchesTracked);
template <class T>
void batchNormForwardEval(const BatchNormShape& s, const T* x, const T* gamma, const T* beta,
                          const T* runningMean, const T* runningVar, double eps, T* y, T* savedMean,
                          T* savedInvStd);
template <class T>
void batchNormBackward(const BatchNormShape& s, bool training, const T* dy, const T* x, const T* gamma,
                       const T* savedMean, const T* savedInvStd, T* dx, T* dgamma, T* dbeta);
template <class T>
void batchNormForwardTangent(const BatchNormShape& s, bool training, const T* x, const T* xDot, const T* gamma,
                             const T* gammaDot, const T* betaDot, const T* savedMean, const T* savedInvStd, T* yDot);
template <class T>
void batchNormBackwardTangent(const BatchNormShape& s, bool training, const T* x, const T* xDot, const T* gamma,
                              const T* gammaDot, const T* savedMean, const T* savedInvStd, const T* dy,
                              const T* dyDot, T* dx, T* dxDot, T* dgammaDot, T* dbetaDot);

// pool.cu (argmax entries outside [0, plane) are skipped: the bindings cannot check device memory)
template <class T> void maxPool2dForward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax);
template <class T> void maxPool2dBackward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx);
template <class T> void maxPool2dGather(const Pool2dShape& s, const T* x, const int32_t* argmax, T* y);

// neuron.cu
template <class T> void neuronForward(const NeuronParams& p, const T* x, T* spikes, T* h);
template <class T> void neuronBackward(const NeuronParams& p, const T* dSpikes, const T* h, T* dx);
// With norm active, x is a BatchNorm's input normalised on the fly (the fused BatchNorm + neuron + max-pool).
// The spikes are counted into spikeCounts, neuronPoolCountSlots(pool) values whose sum is the count: one per
// block of the fused kernel, left for whoever reads the count to add (sum, or a step's firing rates in their
// one sumsInto, which add in the same order), so that no launch of its own finishes the count. One value on
// the unfused twin.
int64_t neuronPoolCountSlots(const Pool2dShape& pool);
template <class T>
void neuronPoolForward(const NeuronParams& p, const Pool2dShape& pool, const T* x, T* pooled, double* spikeCounts,
                       const InputNormalisation<T>& norm = {});
template <class T>
void neuronPoolBackward(const NeuronParams& p, const Pool2dShape& pool, const T* x, const T* dPooled, T* dx,
                        const InputNormalisation<T>& norm = {});
template <class T> void neuronForwardTangent(const NeuronParams& p, const T* h, const T* xDot, T* hDot, T* sDot);
template <class T>
void neuronBackwardTangent(const NeuronParams& p, const T* h, const T* hDot, const T* dSpikes, const T* dSpikesDot,
                           T* dx, T* dxDot);

// loss.cu: labels out of [0, classes) make the loss NaN (device memory cannot be checked by the bindings).
template <class T>
void mseRateLoss(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, T* grad, DeviceResult loss);
template <class T>
void crossEntropyRateLoss(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, T* grad,
                          DeviceResult loss);
// The number of samples whose largest rate (the first on ties) is at their label.
template <class T> void countCorrect(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, DeviceResult r);

// optim.cu: one launch updates every tensor of the list (host arrays describing device tensors).
template <class T>
struct SgdTensor {
  T* param;
  const T* grad;
  T* momentumBuffer;  // nullptr without momentum
  int64_t count;
  bool firstStep;
};
template <class T> void sgdStep(const SgdTensor<T>* tensors, int tensorCount, const SgdParams& p);
template <class T>
struct AdamTensor {
  T* param;
  const T* grad;
  T* expAvg;
  T* expAvgSq;
  int64_t count;
  int64_t step;  // this tensor's own update count (1 on its first update)
};
template <class T> void adamStep(const AdamTensor<T>* tensors, int tensorCount, const AdamParams& p);

// reduce.cu: sums in double in a fixed order (the same bits every run).
template <class T> void sum(int64_t n, const T* x, DeviceResult r);
template <class T> void sumOfSquares(int64_t n, const T* x, DeviceResult r);
template <class T> void dot(int64_t n, const T* x, const T* y, DeviceResult r);
// r <- sqrt(values[0] + ... + values[count - 1]) (a gradient norm from per-tensor sums of squares).
void sqrtOfSum(const double* values, int count, DeviceResult r);
// A tensor of a norm over several: float or double (one pointer set, the other null).
struct NormTensor {
  const float* f32;
  const double* f64;
  int64_t count;
};
// r <- the L2 norm of the tensors together (a model's global gradient norm): two launches for every 16
// tensors, the same bits as sumOfSquares of each into a list and sqrtOfSum of the list.
void l2NormOfAll(const NormTensor* tensors, int tensorCount, DeviceResult r);
// The sum of each tensor to its own result (a step's firing rates into their slots): two launches for
// every 16 tensors, the same bits as sum of each.
struct SumInto {
  NormTensor tensor;
  DeviceResult result;
};
void sumsInto(const SumInto* sums, int count);

// elementwise.cu
template <class T> void fill(int64_t n, T value, T* y);
template <class T> void copy(int64_t n, const T* x, T* y);
template <class T> void axpy(int64_t n, T alpha, const T* x, T* y);
template <class T> void scale(int64_t n, T alpha, T* y);
// Every buffer of the list set to zero bits, in one launch for every 16 (sizes in bytes, multiples of 4).
void zeroAll(void* const* buffers, const int64_t* bytes, int count);
template <class T> void addToTotals(int64_t n, const T* step, T* totals, T* finiteSteps);
template <class T> void convert(int64_t n, const T* x, float* yf, double* yd);
template <class T> void repeatLeading(int64_t steps, int64_t width, T scale, const T* x, T* y);
template <class T> void sumLeading(int64_t steps, int64_t width, T scale, const T* x, T* y);
// out[r] = rows[indices[first + r]] (a mini-batch gathered from a data set resident on the device).
template <class T> void gatherRows(int64_t rowCount, int64_t rowSize, const T* rows, const int32_t* indices, int64_t first, int64_t count, T* out);

// tensor_math.cu: the tensor basics (argmax, sums, arithmetic, comparison, casts), for float, double and
// int32_t, with the CPU's semantics (int32 arithmetic wraps around; NaN is the maximum of argmax; casts to
// int32 truncate and saturate).
template <class T> void binaryBroadcast(BinaryOp op, const BroadcastShape& s, const T* a, const T* b, T* out);
template <class T> void binaryScalar(BinaryOp op, int64_t n, const T* a, T scalar, T* out);
template <class T> void equalBroadcast(const BroadcastShape& s, const T* a, const T* b, int32_t* out);
template <class T> void equalScalar(int64_t n, const T* a, T scalar, int32_t* out);
template <class T> void argmaxAxis(const AxisShape& s, const T* x, int32_t* out);
template <class T> void sumAxis(const AxisShape& s, double scale, const T* x, T* out);
template <class From, class To> void cast(int64_t n, const From* x, To* y);

// mma_check.cu: the largest error of each tensor-core wrapper (mmaTf32, mmaBf16) on known matrices (0 when
// the fragment layouts are right), on the current device; waits for it.
struct MmaLayoutErrors {
  double tf32, bf16;
};
MmaLayoutErrors mmaLayoutCheck();

}  // namespace ikun::cuda
