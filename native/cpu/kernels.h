// CPU kernels: one op family per .cpp file, each forward next to its backward, templated on float and
// double. Backward kernels that produce parameter gradients accumulate into them (as PyTorch does).
// Inputs are validated by the TypeScript layer before any of these run.
#pragma once
#include <cstdint>
#include "../common/batchnorm_rules.h"
#include "../common/shapes.h"

namespace ikun::cpu {

// gemm.cpp: C = alpha op(A) op(B) + beta C, row-major, through the BLAS.
template <class T>
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// conv2d.cpp: NCHW input, weight [out, in, kh, kw], optional bias (nullptr).
template <class T> void conv2dForward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);
template <class T> void conv2dBackwardInput(const Conv2dShape& s, const T* dy, const T* w, T* dx);
template <class T> void conv2dBackwardWeight(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias);

// linear.cpp: x [batch, in], weight [out, in], y [batch, out].
template <class T> void linearForward(const LinearShape& s, const T* x, const T* w, const T* bias, T* y);
template <class T> void linearBackwardInput(const LinearShape& s, const T* dy, const T* w, T* dx);
template <class T> void linearBackwardWeight(const LinearShape& s, const T* x, const T* dy, T* dw, T* dbias);

// batchnorm.cpp: training uses batch statistics (biased variance to normalise, unbiased for the running
// estimate); evaluation uses the running statistics. Both write the mean and 1/sqrt(var + eps) they used;
// y == nullptr computes those only (for a neuron kernel that normalises its input itself).
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
// Forward-mode (R-op) tangents for Hessian-vector products. gammaDot/betaDot: the parameter tangents.
template <class T>
void batchNormForwardTangent(const BatchNormShape& s, bool training, const T* x, const T* xDot, const T* gamma,
                             const T* gammaDot, const T* betaDot, const T* savedMean, const T* savedInvStd, T* yDot);
// Writes dx and dxDot; accumulates the tangents of the parameter gradients into dgammaDot, dbetaDot.
template <class T>
void batchNormBackwardTangent(const BatchNormShape& s, bool training, const T* x, const T* xDot, const T* gamma,
                              const T* gammaDot, const T* savedMean, const T* savedInvStd, const T* dy,
                              const T* dyDot, T* dx, T* dxDot, T* dgammaDot, T* dbetaDot);

// pool.cpp: max-pool without padding; argmax holds the winning offset inside each input plane, the first
// maximum in row-major window order on ties.
template <class T> void maxPool2dForward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax);
template <class T> void maxPool2dBackward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx);
// y[o] = x[argmax[o]] in each plane: the forward tangent of max-pool.
template <class T> void maxPool2dGather(const Pool2dShape& s, const T* x, const int32_t* argmax, T* y);

// neuron.cpp: multi-step IF/LIF fused over time. Forward stores only h (membrane before reset), from
// which backward recomputes spikes and surrogate slopes. With p.staticInput, x (and dx) hold one step of
// width values used at every step (dx: the sum of the per-step gradients).
template <class T> void neuronForward(const NeuronParams& p, const T* x, T* spikes, T* h);
template <class T> void neuronBackward(const NeuronParams& p, const T* dSpikes, const T* h, T* dx);
// A neuron layer followed by max-pool, fused for training: writes the pooled spikes [steps, planes, oh, ow]
// and returns the spike count; stores no membrane, spikes or argmax. Backward recomputes the membrane from
// x, and each window's maximum from its spikes. p.width = planes * inHeight * inWidth.
// With norm active, x is a BatchNorm's input, normalised on the fly (the fused BatchNorm + neuron + max-pool);
// dx is then the gradient of the BatchNorm's output.
template <class T>
double neuronPoolForward(const NeuronParams& p, const Pool2dShape& pool, const T* x, T* pooled,
                         const InputNormalisation<T>& norm = {});
template <class T>
void neuronPoolBackward(const NeuronParams& p, const Pool2dShape& pool, const T* x, const T* dPooled, T* dx,
                        const InputNormalisation<T>& norm = {});
// Forward-mode (R-op) tangents of the two above, for Hessian-vector products.
template <class T> void neuronForwardTangent(const NeuronParams& p, const T* h, const T* xDot, T* hDot, T* sDot);
template <class T>
void neuronBackwardTangent(const NeuronParams& p, const T* h, const T* hDot, const T* dSpikes, const T* dSpikesDot,
                           T* dx, T* dxDot);

// loss.cpp: losses on firing rates [batch, classes]; return the mean loss and write its gradient.
template <class T> double mseRateLoss(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, T* grad);
template <class T> double crossEntropyRateLoss(int64_t batch, int64_t classes, const T* rate, const int32_t* labels, T* grad);
// The number of samples whose largest rate (the first on ties) is at their label.
template <class T> double countCorrect(int64_t batch, int64_t classes, const T* rate, const int32_t* labels);

// optim.cpp: one optimiser update of one parameter in place (PyTorch's rules).
template <class T> void sgdStep(int64_t n, T* param, const T* grad, T* momentumBuffer, const SgdParams& p);
template <class T> void adamStep(int64_t n, T* param, const T* grad, T* expAvg, T* expAvgSq, const AdamParams& p);
// reduce.cpp: sums in double, in a fixed order (firing rates, gradient norms).
template <class T> double sum(int64_t n, const T* x);
template <class T> double sumOfSquares(int64_t n, const T* x);
template <class T> double dot(int64_t n, const T* x, const T* y);

// elementwise.cpp
template <class T> void fill(int64_t n, T value, T* y);
template <class T> void copy(int64_t n, const T* x, T* y);
template <class T> void axpy(int64_t n, T alpha, const T* x, T* y);  // y += alpha x
template <class T> void scale(int64_t n, T alpha, T* y);              // y *= alpha
// Every buffer of the list set to zero bits (a model's gradients before a step: zeroGrad).
void zeroAll(void* const* buffers, const int64_t* bytes, int count);
// totals += step, and finiteSteps[i] += 1 where totals[i] is then finite (finiteSteps may be null): the
// commit of a training step's metrics (common/metrics_rules.h).
template <class T> void addToTotals(int64_t n, const T* step, T* totals, T* finiteSteps);
template <class T> void convert(int64_t n, const T* x, float* yf, double* yd);
// y[t, i] = scale * x[i] for t < steps (x has width items).
template <class T> void repeatLeading(int64_t steps, int64_t width, T scale, const T* x, T* y);
// y[i] = scale * sum_t x[t, i].
template <class T> void sumLeading(int64_t steps, int64_t width, T scale, const T* x, T* y);
// out[r] = rows[indices[first + r]] for r < count, rows of rowSize values (a mini-batch from a data set).
template <class T> void gatherRows(int64_t rowCount, int64_t rowSize, const T* rows, const int32_t* indices, int64_t first, int64_t count, T* out);

// tensor_math.cpp: the tensor basics of training and evaluation scripts (argmax, sums, arithmetic,
// comparison, dtype casts), for float, double and int32_t. Integer arithmetic wraps around like int32
// in PyTorch; division of integers is not offered (the TypeScript layer promotes to float first).
template <class T> void binaryBroadcast(BinaryOp op, const BroadcastShape& s, const T* a, const T* b, T* out);
template <class T> void binaryScalar(BinaryOp op, int64_t n, const T* a, T scalar, T* out);
// out = (a == b) as 0/1.
template <class T> void equalBroadcast(const BroadcastShape& s, const T* a, const T* b, int32_t* out);
template <class T> void equalScalar(int64_t n, const T* a, T scalar, int32_t* out);
// out[o, i] = index along the axis of the first maximum (a NaN counts as the maximum, as in PyTorch).
template <class T> void argmaxAxis(const AxisShape& s, const T* x, int32_t* out);
// out[o, i] = scale * sum over the axis, accumulated in double (int64 for int32, where scale must be 1)
// in a fixed order, so results do not depend on the thread count.
template <class T> void sumAxis(const AxisShape& s, double scale, const T* x, T* out);
// y = x converted; float to int32 truncates toward zero, saturates at the int32 range, NaN gives 0.
template <class From, class To> void cast(int64_t n, const From* x, To* y);

}  // namespace ikun::cpu
