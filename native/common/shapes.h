// Plain descriptions of op geometry and hyperparameters, shared by CPU and CUDA kernels and filled by
// the N-API layer after the TypeScript side validated them.
#pragma once
#include <cstdint>
#include "surrogate.h"

namespace ikun {

struct Conv2dShape {
  int64_t batch, inChannels, inHeight, inWidth;
  int64_t outChannels, kernelHeight, kernelWidth;
  int64_t stride, padding;
  int64_t outHeight() const { return (inHeight + 2 * padding - kernelHeight) / stride + 1; }
  int64_t outWidth() const { return (inWidth + 2 * padding - kernelWidth) / stride + 1; }
  int64_t patchSize() const { return inChannels * kernelHeight * kernelWidth; }
};

struct LinearShape {
  int64_t batch, inFeatures, outFeatures;
};

struct BatchNormShape {
  int64_t batch, channels, spatial;  // input viewed as [batch, channels, spatial]
};

struct Pool2dShape {
  int64_t planes, inHeight, inWidth;  // planes = batch * channels
  int64_t kernel, stride;
  int64_t outHeight() const { return (inHeight - kernel) / stride + 1; }
  int64_t outWidth() const { return (inWidth - kernel) / stride + 1; }
};

// Elementwise op of two operands broadcast to a contiguous output: shape[d] is the output size of dim d,
// aStride[d] / bStride[d] each operand's stride there (0 where it is broadcast). rank >= 1.
constexpr int kMaxBroadcastRank = 8;
struct BroadcastShape {
  int rank;
  int64_t shape[kMaxBroadcastRank];
  int64_t aStride[kMaxBroadcastRank];
  int64_t bStride[kMaxBroadcastRank];
};

// A reduction over the middle axis of x viewed as [outer, axis, inner]; the result is [outer, inner].
struct AxisShape {
  int64_t outer, axis, inner;
};

enum class BinaryOp : int { Add = 0, Sub = 1, Mul = 2, Div = 3 };

enum class NeuronKind : int { IF = 0, LIF = 1 };

// Multi-step neuron over [steps, width]; softReset when vReset is absent.
struct NeuronParams {
  NeuronKind kind;
  double vThreshold;
  double vReset;
  bool softReset;
  double tau;
  bool decayInput;
  bool detachReset;
  SurrogateKind surrogate;
  double alpha;
  bool spiking;      // false: forward runs through the smooth primitive g instead of the Heaviside step
  bool staticInput;  // x is one step repeated over all steps (direct encoding of a static image)
  int64_t steps, width;
};

struct SgdParams {
  double lr, momentum, dampening, weightDecay;
  bool nesterov;
  bool firstStep;  // the momentum buffer starts at the first gradient
};

struct AdamParams {
  double lr, beta1, beta2, eps, weightDecay;
  bool decoupledWeightDecay;  // AdamW
  int64_t step;               // 1 on the first update
};

}  // namespace ikun
