// ikun's CUDA kernel families (every host entry point of native/cuda/kernels.h) on small shapes, checked against
// naive references written here (plain loops in double, from the definitions: PyTorch's for the layers and
// optimisers, ikun-paper.md's for the neurons and surrogates). They run on device memory of the emulated device
// through ikun::cuda::allocate and the copies of runtime.h, as the bindings call them, in the sanitizer programs:
// ThreadSanitizer (the concurrent schedule) and AddressSanitizer with UBSan (all schedules).
//
// The CPU kernels are deliberately not the reference: linking them doubles the programs' build time, and a
// reference that shares the project's formulas (common/) would repeat a mistake in them. Tangents (the Hessian
// passes) are checked against central differences of the naive primal references, so that no tangent formula
// has to be written twice either.
//
// Shapes are chosen to reach the kernels' edges: GEMM tiles that do not divide m, n or k, split-K, partial
// blocks, more than one block, stride loops, padding and stride 2, ties in max-pooling and argmax, int32
// wrap-around, out-of-range labels and argmax entries.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../cuda/common.cuh"
#include "../cuda/fast_divide.cuh"
#include "../cuda/kernels.h"
#include "../cuda/precision.h"
#include "../cuda/runtime.h"
#include "cuda_test.h"

namespace families {

using namespace ikun;
using ikun::cuda::DeviceResult;

constexpr int kDevice = 0;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------------------
// Device buffers through the runtime the bindings use (the caching allocator: a block may hold an earlier
// user's bytes, so outputs a kernel must write are filled with 0xFF bytes first: NaN, or -1 as int32).
template <class T>
class Device {
 public:
  explicit Device(size_t n) : n_(n), p_(static_cast<T*>(cuda::allocate(kDevice, bytes()))) {
    if (n_) cuda::fillBytes(kDevice, p_, 0xFF, bytes());
  }
  explicit Device(const std::vector<T>& host) : n_(host.size()), p_(static_cast<T*>(cuda::allocate(kDevice, bytes()))) {
    upload(host);
  }
  ~Device() { cuda::release(kDevice, p_); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  T* get() const { return p_; }
  void upload(const std::vector<T>& host) {
    IKUN_CHECK(host.size() == n_, "upload of %zu values into %zu", host.size(), n_);
    if (n_) cuda::copyHostToDevice(kDevice, p_, host.data(), bytes());
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_) cuda::copyDeviceToHost(kDevice, host.data(), p_, bytes());
    return host;
  }

 private:
  size_t bytes() const { return n_ * sizeof(T); }
  size_t n_;
  T* p_;
};

// A DeviceResult target (one double on the device) that starts at `initial`.
class ResultSlot {
 public:
  explicit ResultSlot(double initial = kNaN) : d_(std::vector<double>{initial}) {}
  DeviceResult set(double scale = 1.0) const { return DeviceResult{d_.get(), scale, false}; }
  DeviceResult add(double scale = 1.0) const { return DeviceResult{d_.get(), scale, true}; }
  double value() const { return d_.download()[0]; }

 private:
  Device<double> d_;
};

// Deterministic test data (a fixed LCG: the same values with every standard library).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed * 6364136223846793005ull + 1442695040888963407ull) {}
  double uniform(double lo = -1.0, double hi = 1.0) {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * double(state_ >> 11) / double(1ull << 53);
  }
  int integer(int lo, int hi) { return lo + int(uniform(0.0, 1.0) * (hi - lo + 1)) % (hi - lo + 1); }
  template <class T>
  std::vector<T> values(size_t n, double lo = -1.0, double hi = 1.0) {
    std::vector<T> v(n);
    for (T& x : v) x = T(uniform(lo, hi));
    return v;
  }

 private:
  uint64_t state_;
};

template <class T>
std::vector<double> widen(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// |got - want| <= tolerance * max(1, |want|) element by element; NaN only where NaN is wanted.
template <class T>
void expectNear(const std::vector<T>& got, const std::vector<double>& want, double tolerance, const std::string& what) {
  IKUN_CHECK(got.size() == want.size(), "%s: %zu values, want %zu", what.c_str(), got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = double(got[i]), w = want[i];
    if (std::isnan(w)) {
      IKUN_CHECK(std::isnan(g), "%s[%zu] = %.9g, want NaN", what.c_str(), i, g);
      continue;
    }
    IKUN_CHECK(std::fabs(g - w) <= tolerance * std::max(1.0, std::fabs(w)), "%s[%zu] = %.9g, want %.9g", what.c_str(), i, g,
               w);
  }
}
void expectNear(double got, double want, double tolerance, const std::string& what) {
  expectNear(std::vector<double>{got}, std::vector<double>{want}, tolerance, what);
}
template <class T, class U>
void expectEqual(const std::vector<T>& got, const std::vector<U>& want, const std::string& what) {
  IKUN_CHECK(got.size() == want.size(), "%s: %zu values, want %zu", what.c_str(), got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    IKUN_CHECK(got[i] == T(want[i]), "%s[%zu] = %lld, want %lld", what.c_str(), i, (long long)got[i], (long long)want[i]);
}

// Float kernels against double references: rounding of sums of a few hundred terms.
template <class T>
constexpr double tolerance() {
  return sizeof(T) == 4 ? 2e-5 : 1e-11;
}
// The products (gemm, conv2d, linear) of float under the TF32 (bf16) precision round their inputs to TF32's
// 10 (bf16's 7) mantissa bits before the fp32 sums: 5e-3, the bound the CPU/CUDA comparison holds TF32 to (the
// cases below give them inputs exact in either, so what differs is the order of the fp32 sums).
template <class T>
double productTolerance() {
  return std::is_same_v<T, float> && cuda::cudaPrecision() != cuda::CudaPrecision::Fp32 ? 5e-3 : tolerance<T>();
}

// Runs body under a precision, then restores the exact fp32 path the other cases assume.
template <class F>
void withPrecision(cuda::CudaPrecision precision, F body) {
  cuda::setCudaPrecision(precision);
  body();
  cuda::setCudaPrecision(cuda::CudaPrecision::Fp32);
}

template <class T>
const char* typeName() {
  return sizeof(T) == 4 ? "float" : "double";
}

// Runs a case body with the device current, then waits for the device (a kernel error surfaces there).
template <class F>
void onDevice(F body) {
  cuda::DeviceGuard guard(kDevice);
  cuda::setCudaPrecision(cuda::CudaPrecision::Fp32);  // exact references; the TF32 cases say so
  body();
  cuda::synchronize(kDevice);
}

// Central difference of f along a direction, for tangent references: (f(+eps) - f(-eps)) / (2 eps), element
// by element. f(e) returns the primal outputs at parameter e along the direction.
std::vector<double> centralDifference(const std::function<std::vector<double>(double)>& f, double eps) {
  std::vector<double> plus = f(eps), minus = f(-eps), d(plus.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = (plus[i] - minus[i]) / (2 * eps);
  return d;
}
std::vector<double> along(const std::vector<double>& x, const std::vector<double>& direction, double e) {
  std::vector<double> y(x);
  for (size_t i = 0; i < y.size(); ++i) y[i] += e * direction[i];
  return y;
}
template <class T>
std::vector<T> narrow(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// ---------------------------------------------------------------------------------------------------------
// gemm: C = alpha op(A) op(B) + beta C, row-major, with leading dimensions wider than the matrices.
// x rounded to the 10 mantissa bits of TF32 (finite x; the kernels' cvt.rna rounding, ties away from zero).
float exactInTf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &u, sizeof u);
  return x;
}

// x rounded to bf16's 7 mantissa bits (finite x; the kernels' cvt.rn rounding, ties to even).
float exactInBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&x, &u, sizeof u);
  return x;
}

// Under the TF32 (bf16) precision, float products' inputs that TF32 (bf16) represents exactly: the kernels'
// index arithmetic (and the bf16 pairs' packing) is what the comparison then checks, not the rounding of
// inputs, which grows with k past the tolerance (gpu-check compares both on random data with their own).
template <class T>
std::vector<T> exactOnTensorCores(std::vector<T> v) {
  if (!std::is_same_v<T, float>) return v;
  if (cuda::cudaPrecision() == cuda::CudaPrecision::Tf32)
    for (T& x : v) x = T(exactInTf32(float(x)));
  if (cuda::cudaPrecision() == cuda::CudaPrecision::Bf16)
    for (T& x : v) x = T(exactInBf16(float(x)));
  return v;
}

template <class T>
void checkGemm(bool transA, bool transB, double beta, uint64_t seed, int64_t k = 21, bool aligned = false) {
  // one 64x64 tile short in m, two in n; k not a multiple of 16 (k = 600: the GEMM splits k in two).
  // aligned: leading dimensions of whole 16 bytes, so that the TF32 kernel stages lines along k with 16-byte loads
  const int64_t m = 37, n = 70;
  const auto lead = [&](int64_t extent, int64_t pad) { return aligned ? (extent + pad + 3) / 4 * 4 : extent + pad; };
  const int64_t lda = lead(transA ? m : k, 3), ldb = lead(transB ? k : n, 2), ldc = n + 5;
  Random random(seed);
  std::vector<T> a = random.values<T>(size_t((transA ? k : m) * lda)), b = random.values<T>(size_t((transB ? n : k) * ldb));
  // aligned (the long k of the TF32 cases) and every bf16 case: inputs that the tensor cores represent exactly,
  // so that their rounding of them, which grows with k past the tolerance, is not what is compared
  if (aligned || cuda::cudaPrecision() == cuda::CudaPrecision::Bf16) a = exactOnTensorCores(a), b = exactOnTensorCores(b);
  std::vector<T> c0 = random.values<T>(size_t(m * ldc));
  if (beta == 0) std::fill(c0.begin(), c0.end(), T(kNaN));  // beta 0: C is not read (BLAS), NaN must not leak
  const double alpha = 1.5;
  std::vector<double> want = widen(c0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += double(transA ? a[p * lda + i] : a[i * lda + p]) * double(transB ? b[j * ldb + p] : b[p * ldb + j]);
      want[i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * double(c0[i * ldc + j]));
    }
  // Columns n..ldc-1 are not part of C: they keep their bytes (NaN stays NaN, expectNear checks it).
  Device<T> da(a), db(b), dc(c0);
  cuda::gemm<T>(transA, transB, m, n, k, T(alpha), da.get(), lda, db.get(), ldb, T(beta), dc.get(), ldc);
  expectNear(dc.download(), want, productTolerance<T>(),
             std::string("gemm<") + typeName<T>() + "> transA " + std::to_string(transA) + " transB " +
                 std::to_string(transB) + " beta " + std::to_string(beta));
}

// ---------------------------------------------------------------------------------------------------------
// conv2d (NCHW, weight [out, in, kh, kw]).
struct ConvReference {
  Conv2dShape s;
  double x(const std::vector<double>& v, int64_t n, int64_t c, int64_t y, int64_t xx) const {
    if (y < 0 || xx < 0 || y >= s.inHeight || xx >= s.inWidth) return 0.0;
    return v[size_t(((n * s.inChannels + c) * s.inHeight + y) * s.inWidth + xx)];
  }
  size_t wAt(int64_t co, int64_t ci, int64_t ki, int64_t kj) const {
    return size_t(((co * s.inChannels + ci) * s.kernelHeight + ki) * s.kernelWidth + kj);
  }
  size_t yAt(int64_t n, int64_t co, int64_t oy, int64_t ox) const {
    return size_t(((n * s.outChannels + co) * s.outHeight() + oy) * s.outWidth() + ox);
  }
  // Calls f(n, co, oy, ox, ci, ki, kj, iy, ix) for every tap of every output (the padding included).
  template <class F>
  void taps(F f) const {
    for (int64_t n = 0; n < s.batch; ++n)
      for (int64_t co = 0; co < s.outChannels; ++co)
        for (int64_t oy = 0; oy < s.outHeight(); ++oy)
          for (int64_t ox = 0; ox < s.outWidth(); ++ox)
            for (int64_t ci = 0; ci < s.inChannels; ++ci)
              for (int64_t ki = 0; ki < s.kernelHeight; ++ki)
                for (int64_t kj = 0; kj < s.kernelWidth; ++kj)
                  f(n, co, oy, ox, ci, ki, kj, oy * s.stride + ki - s.padding, ox * s.stride + kj - s.padding);
  }
  size_t inputs() const { return size_t(s.batch * s.inChannels * s.inHeight * s.inWidth); }
  size_t weights() const { return size_t(s.outChannels * s.inChannels * s.kernelHeight * s.kernelWidth); }
  size_t outputs() const { return size_t(s.batch * s.outChannels * s.outHeight() * s.outWidth()); }
  bool inside(int64_t iy, int64_t ix) const { return iy >= 0 && ix >= 0 && iy < s.inHeight && ix < s.inWidth; }
  size_t xAt(int64_t n, int64_t c, int64_t iy, int64_t ix) const {
    return size_t(((n * s.inChannels + c) * s.inHeight + iy) * s.inWidth + ix);
  }
};

template <class T>
void checkConv2d(const Conv2dShape& s, bool withBias, uint64_t seed) {
  ConvReference ref{s};
  Random random(seed);
  const std::vector<T> x = exactOnTensorCores(random.values<T>(ref.inputs())), w = exactOnTensorCores(random.values<T>(ref.weights())),
                       bias = random.values<T>(size_t(s.outChannels)), dy = exactOnTensorCores(random.values<T>(ref.outputs())),
                       dw0 = random.values<T>(ref.weights()), dbias0 = random.values<T>(size_t(s.outChannels));
  const std::vector<double> xd = widen(x), wd = widen(w), dyd = widen(dy);
  std::vector<double> y(ref.outputs(), 0.0), dx(ref.inputs(), 0.0), dw = widen(dw0), dbias = widen(dbias0);
  if (withBias)
    for (size_t i = 0; i < y.size(); ++i) y[i] = double(bias[i / size_t(s.outHeight() * s.outWidth()) % size_t(s.outChannels)]);
  ref.taps([&](int64_t n, int64_t co, int64_t oy, int64_t ox, int64_t ci, int64_t ki, int64_t kj, int64_t iy, int64_t ix) {
    const size_t yi = ref.yAt(n, co, oy, ox), wi = ref.wAt(co, ci, ki, kj);
    y[yi] += wd[wi] * ref.x(xd, n, ci, iy, ix);
    if (ref.inside(iy, ix)) {
      dx[ref.xAt(n, ci, iy, ix)] += wd[wi] * dyd[yi];
      dw[wi] += dyd[yi] * xd[ref.xAt(n, ci, iy, ix)];
    }
  });
  for (size_t i = 0; i < dyd.size(); ++i) dbias[i / size_t(s.outHeight() * s.outWidth()) % size_t(s.outChannels)] += dyd[i];

  const std::string name = std::string("conv2d<") + typeName<T>() + "> " + std::to_string(s.inHeight) + "x" +
                           std::to_string(s.inWidth) + " stride " + std::to_string(s.stride) + " padding " +
                           std::to_string(s.padding) + (withBias ? " with bias" : "");
  Device<T> dX(x), dW(w), dBias(bias), dY(ref.outputs()), dDy(dy), dDx(ref.inputs()), dDw(dw0), dDbias(dbias0);
  cuda::conv2dForward<T>(s, dX.get(), dW.get(), withBias ? dBias.get() : nullptr, dY.get());
  expectNear(dY.download(), y, productTolerance<T>(), name + " forward");
  cuda::conv2dBackwardInput<T>(s, dDy.get(), dW.get(), dDx.get());
  expectNear(dDx.download(), dx, productTolerance<T>(), name + " backward input");
  cuda::conv2dBackwardWeight<T>(s, dX.get(), dDy.get(), dDw.get(), withBias ? dDbias.get() : nullptr);
  expectNear(dDw.download(), dw, 4 * productTolerance<T>(), name + " backward weight (accumulated)");
  expectNear(dDbias.download(), withBias ? dbias : widen(dbias0), 4 * productTolerance<T>(), name + " bias gradient (accumulated)");
}

// ---------------------------------------------------------------------------------------------------------
// linear: x [batch, in], weight [out, in], y = x w^T + bias; weight and bias gradients accumulate.
template <class T>
void checkLinear(const LinearShape& s, uint64_t seed) {
  Random random(seed);
  const size_t nx = size_t(s.batch * s.inFeatures), nw = size_t(s.outFeatures * s.inFeatures), ny = size_t(s.batch * s.outFeatures);
  const std::vector<T> x = exactOnTensorCores(random.values<T>(nx)), w = exactOnTensorCores(random.values<T>(nw)),
                       bias = random.values<T>(size_t(s.outFeatures)), dy = exactOnTensorCores(random.values<T>(ny)),
                       dw0 = random.values<T>(nw), dbias0 = random.values<T>(size_t(s.outFeatures));
  std::vector<double> y(ny), dx(nx, 0.0), dw = widen(dw0), dbias = widen(dbias0);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t o = 0; o < s.outFeatures; ++o) {
      double v = double(bias[size_t(o)]);
      for (int64_t i = 0; i < s.inFeatures; ++i) v += double(x[size_t(b * s.inFeatures + i)]) * double(w[size_t(o * s.inFeatures + i)]);
      y[size_t(b * s.outFeatures + o)] = v;
      const double g = double(dy[size_t(b * s.outFeatures + o)]);
      dbias[size_t(o)] += g;
      for (int64_t i = 0; i < s.inFeatures; ++i) {
        dx[size_t(b * s.inFeatures + i)] += g * double(w[size_t(o * s.inFeatures + i)]);
        dw[size_t(o * s.inFeatures + i)] += g * double(x[size_t(b * s.inFeatures + i)]);
      }
    }
  const std::string name = std::string("linear<") + typeName<T>() + "> batch " + std::to_string(s.batch);
  Device<T> dX(x), dW(w), dBias(bias), dY(ny), dDy(dy), dDx(nx), dDw(dw0), dDbias(dbias0);
  cuda::linearForward<T>(s, dX.get(), dW.get(), dBias.get(), dY.get());
  expectNear(dY.download(), y, productTolerance<T>(), name + " forward");
  cuda::linearForward<T>(s, dX.get(), dW.get(), nullptr, dY.get());
  std::vector<double> noBias(y);
  for (size_t i = 0; i < ny; ++i) noBias[i] -= double(bias[i % size_t(s.outFeatures)]);
  expectNear(dY.download(), noBias, productTolerance<T>(), name + " forward without bias");
  cuda::linearBackwardInput<T>(s, dDy.get(), dW.get(), dDx.get());
  expectNear(dDx.download(), dx, productTolerance<T>(), name + " backward input");
  cuda::linearBackwardWeight<T>(s, dX.get(), dDy.get(), dDw.get(), dDbias.get());
  expectNear(dDw.download(), dw, 4 * productTolerance<T>(), name + " backward weight (accumulated)");
  expectNear(dDbias.download(), dbias, 4 * productTolerance<T>(), name + " bias gradient (accumulated)");
}


// ---------------------------------------------------------------------------------------------------------
// batchnorm over [batch, channels, spatial] (PyTorch's BatchNorm2d: normalise with the biased variance of the
// batch, update the running estimates with the unbiased one; replicas > 1 counts the input that many times
// for the unbiased estimate).
struct BatchNormReference {
  BatchNormShape s;
  size_t at(int64_t n, int64_t c, int64_t p) const { return size_t((n * s.channels + c) * s.spatial + p); }
  size_t size() const { return size_t(s.batch * s.channels * s.spatial); }
  double count() const { return double(s.batch * s.spatial); }
  template <class F>
  void each(int64_t c, F f) const {
    for (int64_t n = 0; n < s.batch; ++n)
      for (int64_t p = 0; p < s.spatial; ++p) f(at(n, c, p));
  }
  // The batch mean and 1 / sqrt(biased variance + eps) of each channel.
  void statistics(const std::vector<double>& x, double eps, std::vector<double>& mean, std::vector<double>& invStd,
                  std::vector<double>* unbiased = nullptr, double replicas = 1) const {
    mean.assign(size_t(s.channels), 0.0);
    invStd.assign(size_t(s.channels), 0.0);
    if (unbiased) unbiased->assign(size_t(s.channels), 0.0);
    for (int64_t c = 0; c < s.channels; ++c) {
      double sum = 0, squares = 0;
      each(c, [&](size_t i) { sum += x[i]; });
      const double m = sum / count();
      each(c, [&](size_t i) { squares += (x[i] - m) * (x[i] - m); });
      mean[size_t(c)] = m;
      invStd[size_t(c)] = 1.0 / std::sqrt(squares / count() + eps);
      if (unbiased) (*unbiased)[size_t(c)] = squares * replicas / (count() * replicas - 1);
    }
  }
  std::vector<double> normalise(const std::vector<double>& x, const std::vector<double>& gamma, const std::vector<double>& beta,
                                const std::vector<double>& mean, const std::vector<double>& invStd) const {
    std::vector<double> y(size());
    for (int64_t c = 0; c < s.channels; ++c)
      each(c, [&](size_t i) { y[i] = gamma[size_t(c)] * (x[i] - mean[size_t(c)]) * invStd[size_t(c)] + beta[size_t(c)]; });
    return y;
  }
  // The gradients of sum(dy * y) for y = normalise(x, gamma, beta): with the batch's statistics (training: they
  // move with x) or with fixed ones (evaluation). Returns dx, then dgamma, then dbeta, in one vector.
  std::vector<double> backward(const std::vector<double>& x, const std::vector<double>& gamma, const std::vector<double>& dy,
                               bool training, const std::vector<double>& fixedMean, const std::vector<double>& fixedInvStd,
                               double eps) const {
    std::vector<double> mean = fixedMean, invStd = fixedInvStd;
    if (training) statistics(x, eps, mean, invStd);
    std::vector<double> out(size() + 2 * size_t(s.channels), 0.0);
    for (int64_t c = 0; c < s.channels; ++c) {
      const double m = mean[size_t(c)], r = invStd[size_t(c)], g = gamma[size_t(c)];
      double sumDy = 0, sumDyXhat = 0;
      each(c, [&](size_t i) {
        sumDy += dy[i];
        sumDyXhat += dy[i] * (x[i] - m) * r;
      });
      each(c, [&](size_t i) {
        const double xhat = (x[i] - m) * r;
        out[i] = training ? g * r * (dy[i] - sumDy / count() - xhat * sumDyXhat / count()) : g * r * dy[i];
      });
      out[size() + size_t(c)] = sumDyXhat;
      out[size() + size_t(s.channels + c)] = sumDy;
    }
    return out;
  }
};

std::vector<double> slice(const std::vector<double>& v, size_t begin, size_t count) {
  return std::vector<double>(v.begin() + long(begin), v.begin() + long(begin + count));
}

template <class T>
void checkBatchNorm(const BatchNormShape& s, double replicas, uint64_t seed) {
  const BatchNormReference ref{s};
  const size_t n = ref.size(), channels = size_t(s.channels);
  const double eps = 1e-5, momentum = 0.1;
  Random random(seed);
  const std::vector<T> x = random.values<T>(n, 1.0, 3.0);  // off zero, so the shift-based sums are exercised
  const std::vector<T> gamma = random.values<T>(channels, 0.5, 1.5), beta = random.values<T>(channels);
  const std::vector<T> runningMean = random.values<T>(channels), runningVar = random.values<T>(channels, 0.5, 2.0);
  const std::vector<T> dy = random.values<T>(n), xDot = random.values<T>(n), gammaDot = random.values<T>(channels),
                       betaDot = random.values<T>(channels), dyDot = random.values<T>(n),
                       dgamma0 = random.values<T>(channels), dbeta0 = random.values<T>(channels);
  const std::vector<double> xd = widen(x), gd = widen(gamma), bd = widen(beta), dyd = widen(dy), xDotd = widen(xDot),
                            gDotd = widen(gammaDot), bDotd = widen(betaDot), dyDotd = widen(dyDot);
  const std::vector<double> zeros(channels, 0.0);
  const std::string name = std::string("batchnorm<") + typeName<T>() + "> " + std::to_string(s.batch) + "x" +
                           std::to_string(s.channels) + "x" + std::to_string(s.spatial);
  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-7;  // the tangents' references are central differences

  Device<T> dX(x), dGamma(gamma), dBeta(beta), dRunMean(runningMean), dRunVar(runningVar), dY(n), dMean(channels),
      dInvStd(channels), dDy(dy), dDx(n), dDgamma(dgamma0), dDbeta(dbeta0), dXDot(xDot), dGammaDot(gammaDot),
      dBetaDot(betaDot), dYDot(n), dDyDot(dyDot), dDxDot(n);

  // training forward: the batch statistics, the running estimates, y
  std::vector<double> mean, invStd, unbiased;
  ref.statistics(xd, eps, mean, invStd, &unbiased, replicas);
  std::vector<double> wantRunMean(channels), wantRunVar(channels);
  for (size_t c = 0; c < channels; ++c) {
    wantRunMean[c] = (1 - momentum) * double(runningMean[c]) + momentum * mean[c];
    wantRunVar[c] = (1 - momentum) * double(runningVar[c]) + momentum * unbiased[c];
  }
  Device<double> dBatches(std::vector<double>{41});
  cuda::batchNormForwardTrain<T>(s, dX.get(), dGamma.get(), dBeta.get(), dRunMean.get(), dRunVar.get(), momentum, eps,
                                 int64_t(replicas), dY.get(), dMean.get(), dInvStd.get(), dBatches.get());
  expectNear(dBatches.download(), std::vector<double>{42}, 0, name + " num_batches_tracked counted once");
  expectNear(dY.download(), ref.normalise(xd, gd, bd, mean, invStd), tolerance<T>(), name + " train forward y");
  expectNear(dMean.download(), mean, tolerance<T>(), name + " saved mean");
  expectNear(dInvStd.download(), invStd, tolerance<T>(), name + " saved 1/std");
  expectNear(dRunMean.download(), wantRunMean, tolerance<T>(), name + " running mean");
  expectNear(dRunVar.download(), wantRunVar, tolerance<T>(), name + " running variance (unbiased)");

  // training backward (with the saved statistics), then without an input gradient (dx = nullptr)
  std::vector<double> back = ref.backward(xd, gd, dyd, true, {}, {}, eps);
  cuda::batchNormBackward<T>(s, true, dDy.get(), dX.get(), dGamma.get(), dMean.get(), dInvStd.get(), dDx.get(), dDgamma.get(),
                             dDbeta.get());
  std::vector<double> wantDgamma = widen(dgamma0), wantDbeta = widen(dbeta0);
  for (size_t c = 0; c < channels; ++c) wantDgamma[c] += back[n + c], wantDbeta[c] += back[n + channels + c];
  expectNear(dDx.download(), slice(back, 0, n), tolerance<T>(), name + " train backward dx");
  expectNear(dDgamma.download(), wantDgamma, tolerance<T>(), name + " train backward dgamma (accumulated)");
  expectNear(dDbeta.download(), wantDbeta, tolerance<T>(), name + " train backward dbeta (accumulated)");
  cuda::batchNormBackward<T>(s, true, dDy.get(), dX.get(), dGamma.get(), dMean.get(), dInvStd.get(), nullptr, dDgamma.get(),
                             dDbeta.get());
  for (size_t c = 0; c < channels; ++c) wantDgamma[c] += back[n + c], wantDbeta[c] += back[n + channels + c];
  expectNear(dDgamma.download(), wantDgamma, tolerance<T>(), name + " backward without dx: dgamma");
  expectNear(dDbeta.download(), wantDbeta, tolerance<T>(), name + " backward without dx: dbeta");

  // training forward tangent: the derivative of y along (xDot, gammaDot, betaDot); without gammaDot and betaDot
  const auto trainForward = [&](const std::vector<double>& gDir, const std::vector<double>& bDir) {
    return [&, gDir, bDir](double e) {
      std::vector<double> xe = along(xd, xDotd, e), m, r;
      ref.statistics(xe, eps, m, r);
      return ref.normalise(xe, along(gd, gDir, e), along(bd, bDir, e), m, r);
    };
  };
  cuda::batchNormForwardTangent<T>(s, true, dX.get(), dXDot.get(), dGamma.get(), dGammaDot.get(), dBetaDot.get(), dMean.get(),
                                   dInvStd.get(), dYDot.get());
  expectNear(dYDot.download(), centralDifference(trainForward(gDotd, bDotd), 1e-4), tol, name + " train forward tangent");
  cuda::batchNormForwardTangent<T>(s, true, dX.get(), dXDot.get(), dGamma.get(), nullptr, nullptr, dMean.get(), dInvStd.get(),
                                   dYDot.get());
  expectNear(dYDot.download(), centralDifference(trainForward(zeros, zeros), 1e-4), tol,
             name + " train forward tangent without gammaDot, betaDot");

  // training backward tangent: the derivative of (dx, dgamma, dbeta) along (xDot, gammaDot, dyDot)
  const auto trainBackward = [&](double e) {
    return ref.backward(along(xd, xDotd, e), along(gd, gDotd, e), along(dyd, dyDotd, e), true, {}, {}, eps);
  };
  std::vector<double> tangent = centralDifference(trainBackward, 1e-4);
  Device<T> dDgammaDot(dgamma0), dDbetaDot(dbeta0);
  cuda::batchNormBackwardTangent<T>(s, true, dX.get(), dXDot.get(), dGamma.get(), dGammaDot.get(), dMean.get(), dInvStd.get(),
                                    dDy.get(), dDyDot.get(), dDx.get(), dDxDot.get(), dDgammaDot.get(), dDbetaDot.get());
  std::vector<double> wantDgammaDot = widen(dgamma0), wantDbetaDot = widen(dbeta0);
  for (size_t c = 0; c < channels; ++c) wantDgammaDot[c] += tangent[n + c], wantDbetaDot[c] += tangent[n + channels + c];
  expectNear(dDx.download(), slice(back, 0, n), tolerance<T>(), name + " train backward tangent: dx");
  expectNear(dDxDot.download(), slice(tangent, 0, n), tol, name + " train backward tangent: dxDot");
  expectNear(dDgammaDot.download(), wantDgammaDot, tol, name + " train backward tangent: dgammaDot (accumulated)");
  expectNear(dDbetaDot.download(), wantDbetaDot, tol, name + " train backward tangent: dbetaDot (accumulated)");

  // evaluation: the running estimates normalise; forward, backward and both tangents with them held fixed
  const std::vector<double> runMean = widen(dRunMean.download()), runVar = widen(dRunVar.download());
  std::vector<double> evalInvStd(channels);
  for (size_t c = 0; c < channels; ++c) evalInvStd[c] = 1.0 / std::sqrt(runVar[c] + eps);
  cuda::batchNormForwardEval<T>(s, dX.get(), dGamma.get(), dBeta.get(), dRunMean.get(), dRunVar.get(), eps, dY.get(), dMean.get(),
                                dInvStd.get());
  expectNear(dY.download(), ref.normalise(xd, gd, bd, runMean, evalInvStd), tolerance<T>(), name + " eval forward y");
  expectNear(dMean.download(), runMean, tolerance<T>(), name + " eval saved mean");
  expectNear(dInvStd.download(), evalInvStd, tolerance<T>(), name + " eval saved 1/std");
  back = ref.backward(xd, gd, dyd, false, runMean, evalInvStd, eps);
  Device<T> dEvalDgamma(dgamma0), dEvalDbeta(dbeta0);
  cuda::batchNormBackward<T>(s, false, dDy.get(), dX.get(), dGamma.get(), dMean.get(), dInvStd.get(), dDx.get(),
                             dEvalDgamma.get(), dEvalDbeta.get());
  wantDgamma = widen(dgamma0), wantDbeta = widen(dbeta0);
  for (size_t c = 0; c < channels; ++c) wantDgamma[c] += back[n + c], wantDbeta[c] += back[n + channels + c];
  expectNear(dDx.download(), slice(back, 0, n), tolerance<T>(), name + " eval backward dx");
  expectNear(dEvalDgamma.download(), wantDgamma, tolerance<T>(), name + " eval backward dgamma");
  expectNear(dEvalDbeta.download(), wantDbeta, tolerance<T>(), name + " eval backward dbeta");
  const auto evalForward = [&](double e) {
    return ref.normalise(along(xd, xDotd, e), along(gd, gDotd, e), along(bd, bDotd, e), runMean, evalInvStd);
  };
  cuda::batchNormForwardTangent<T>(s, false, dX.get(), dXDot.get(), dGamma.get(), dGammaDot.get(), dBetaDot.get(), dMean.get(),
                                   dInvStd.get(), dYDot.get());
  expectNear(dYDot.download(), centralDifference(evalForward, 1e-4), tol, name + " eval forward tangent");
  const auto evalBackward = [&](double e) {
    return ref.backward(along(xd, xDotd, e), gd, along(dyd, dyDotd, e), false, runMean, evalInvStd, eps);
  };
  tangent = centralDifference(evalBackward, 1e-4);
  Device<T> dEvalDgammaDot(dgamma0), dEvalDbetaDot(dbeta0);
  // gammaDot absent: the tangent moves x and dy only
  cuda::batchNormBackwardTangent<T>(s, false, dX.get(), dXDot.get(), dGamma.get(), nullptr, dMean.get(), dInvStd.get(), dDy.get(),
                                    dDyDot.get(), dDx.get(), dDxDot.get(), dEvalDgammaDot.get(), dEvalDbetaDot.get());
  wantDgammaDot = widen(dgamma0), wantDbetaDot = widen(dbeta0);
  for (size_t c = 0; c < channels; ++c) wantDgammaDot[c] += tangent[n + c], wantDbetaDot[c] += tangent[n + channels + c];
  expectNear(dDx.download(), slice(back, 0, n), tolerance<T>(), name + " eval backward tangent: dx");
  expectNear(dDxDot.download(), slice(tangent, 0, n), tol, name + " eval backward tangent: dxDot");
  expectNear(dEvalDgammaDot.download(), wantDgammaDot, tol, name + " eval backward tangent: dgammaDot");
  expectNear(dEvalDbetaDot.download(), wantDbetaDot, tol, name + " eval backward tangent: dbetaDot");
}

// ---------------------------------------------------------------------------------------------------------
// max-pool without padding: the first maximum in row-major window order wins ties (PyTorch); argmax is the
// offset in the input plane.
struct PoolReference {
  Pool2dShape s;
  size_t inPlane() const { return size_t(s.inHeight * s.inWidth); }
  size_t outPlane() const { return size_t(s.outHeight() * s.outWidth()); }
  void forward(const std::vector<double>& x, std::vector<double>& y, std::vector<int32_t>& argmax) const {
    y.assign(size_t(s.planes) * outPlane(), 0.0);
    argmax.assign(y.size(), 0);
    for (int64_t q = 0; q < s.planes; ++q)
      for (int64_t oy = 0; oy < s.outHeight(); ++oy)
        for (int64_t ox = 0; ox < s.outWidth(); ++ox) {
          int64_t best = -1;
          double bestValue = 0;
          for (int64_t ki = 0; ki < s.kernel; ++ki)
            for (int64_t kj = 0; kj < s.kernel; ++kj) {
              const int64_t at = (oy * s.stride + ki) * s.inWidth + ox * s.stride + kj;
              const double v = x[size_t(q) * inPlane() + size_t(at)];
              if (best < 0 || v > bestValue) best = at, bestValue = v;
            }
          const size_t o = size_t(q) * outPlane() + size_t(oy * s.outWidth() + ox);
          y[o] = bestValue;
          argmax[o] = int32_t(best);
        }
  }
  // Each output's gradient to the input at its argmax (entries outside the plane skipped).
  std::vector<double> backward(const std::vector<double>& dy, const std::vector<int32_t>& argmax) const {
    std::vector<double> dx(size_t(s.planes) * inPlane(), 0.0);
    for (size_t o = 0; o < dy.size(); ++o)
      if (argmax[o] >= 0 && size_t(argmax[o]) < inPlane()) dx[o / outPlane() * inPlane() + size_t(argmax[o])] += dy[o];
    return dx;
  }
};

template <class T>
void checkMaxPool(const Pool2dShape& s, uint64_t seed) {
  const PoolReference ref{s};
  Random random(seed);
  std::vector<T> x(size_t(s.planes) * ref.inPlane());
  for (T& v : x) v = T(random.integer(0, 3));  // few distinct values: many ties
  std::vector<double> y;
  std::vector<int32_t> argmax;
  ref.forward(widen(x), y, argmax);
  const std::string name = std::string("maxpool<") + typeName<T>() + "> " + std::to_string(s.inHeight) + "x" +
                           std::to_string(s.inWidth) + " kernel " + std::to_string(s.kernel) + " stride " + std::to_string(s.stride);
  Device<T> dX(x), dY(y.size());
  Device<int32_t> dArgmax(y.size());
  cuda::maxPool2dForward<T>(s, dX.get(), dY.get(), dArgmax.get());
  expectNear(dY.download(), y, 0.0, name + " forward");
  expectEqual(dArgmax.download(), argmax, name + " argmax (first maximum on ties)");

  // backward and gather with two argmax entries outside the plane (-1 and the plane size): skipped by the
  // backward, NaN from the gather
  argmax[1] = -1;
  argmax[argmax.size() - 1] = int32_t(ref.inPlane());
  dArgmax.upload(argmax);
  const std::vector<T> dy = random.values<T>(y.size()), other = random.values<T>(x.size());
  Device<T> dDy(dy), dDx(x.size()), dOther(other), dGathered(y.size());
  cuda::maxPool2dBackward<T>(s, dDy.get(), dArgmax.get(), dDx.get());
  expectNear(dDx.download(), ref.backward(widen(dy), argmax), tolerance<T>(), name + " backward");
  std::vector<double> gathered(y.size());
  for (size_t o = 0; o < y.size(); ++o)
    gathered[o] = argmax[o] >= 0 && size_t(argmax[o]) < ref.inPlane() ? double(other[o / ref.outPlane() * ref.inPlane() + size_t(argmax[o])]) : kNaN;
  cuda::maxPool2dGather<T>(s, dOther.get(), dArgmax.get(), dGathered.get());
  expectNear(dGathered.download(), gathered, 0.0, name + " gather");
}


// ---------------------------------------------------------------------------------------------------------
// Neurons over [steps, width] (ikun-paper.md, "Neurons" and "Surrogates"), written from the definitions:
// charge   IF: h = v + x;  LIF: h = v + (x - (v - vr)) / tau (decayInput), h = v - (v - vr) / tau + x (not);
// fire     s = [h >= vth] (spiking) or g(h - vth) (smooth);
// reset    soft: v = h - vth s;  hard: v = h (1 - s) + vr s   (vr = 0 with soft reset; v starts at vr);
// BPTT     ds/dh = g'(h - vth) (the surrogate); with detachReset the s of the reset is a constant.
struct SurrogateReference {
  SurrogateKind kind;
  double alpha;
  // g, g', g'' at u
  void eval(double u, double& g, double& g1, double& g2) const {
    const double pi = 3.14159265358979323846;
    switch (kind) {
      case SurrogateKind::ATan: {
        const double c = pi / 2 * alpha, w = c * u;
        g = std::atan(w) / pi + 0.5;
        g1 = alpha / 2 / (1 + w * w);
        g2 = -alpha * c * c * u / ((1 + w * w) * (1 + w * w));
        return;
      }
      case SurrogateKind::Sigmoid: {
        const double sg = 1 / (1 + std::exp(-alpha * u));
        g = sg;
        g1 = alpha * sg * (1 - sg);
        g2 = alpha * alpha * sg * (1 - sg) * (1 - 2 * sg);
        return;
      }
      case SurrogateKind::Erf: {
        g = 0.5 * std::erfc(-alpha * u);
        g1 = alpha / std::sqrt(pi) * std::exp(-alpha * alpha * u * u);
        g2 = -2 * alpha * alpha * u * g1;
        return;
      }
      case SurrogateKind::Rect: {
        g = std::min(1.0, std::max(0.0, alpha * u + 0.5));
        g1 = std::fabs(u) < 0.5 / alpha ? alpha : 0.0;
        g2 = 0;
        return;
      }
      default:
        throw ikun::test::TestFailure("no reference for this surrogate");
    }
  }
};

struct NeuronReference {
  NeuronParams p;
  SurrogateReference surrogate;
  double vr() const { return p.softReset ? 0.0 : p.vReset; }
  double charge(double v, double x) const {
    if (p.kind == NeuronKind::IF) return v + x;
    return p.decayInput ? v + (x - (v - vr())) / p.tau : v - (v - vr()) / p.tau + x;
  }
  double dhdv() const { return p.kind == NeuronKind::IF ? 1.0 : 1.0 - 1.0 / p.tau; }
  double dhdx() const { return p.kind == NeuronKind::LIF && p.decayInput ? 1.0 / p.tau : 1.0; }
  double spike(double h) const {
    double g, g1, g2;
    surrogate.eval(h - p.vThreshold, g, g1, g2);
    return p.spiking ? (h >= p.vThreshold ? 1.0 : 0.0) : g;
  }
  size_t size() const { return size_t(p.steps * p.width); }
  double input(const std::vector<double>& x, int64_t t, int64_t i) const {
    return x[size_t((p.staticInput ? 0 : t) * p.width + i)];
  }
  void forward(const std::vector<double>& x, std::vector<double>& spikes, std::vector<double>& h) const {
    spikes.assign(size(), 0.0);
    h.assign(size(), 0.0);
    for (int64_t i = 0; i < p.width; ++i) {
      double v = vr();
      for (int64_t t = 0; t < p.steps; ++t) {
        const size_t at = size_t(t * p.width + i);
        h[at] = charge(v, input(x, t, i));
        spikes[at] = spike(h[at]);
        v = p.softReset ? h[at] - p.vThreshold * spikes[at] : h[at] * (1 - spikes[at]) + vr() * spikes[at];
      }
    }
  }
  // dv[t]/dh[t] (the reset path) and its derivative along hDot.
  double resetPath(double h, double slope) const {
    const double s = spike(h);
    if (p.softReset) return p.detachReset ? 1.0 : 1.0 - p.vThreshold * slope;
    return p.detachReset ? 1.0 - s : 1.0 - s + (vr() - h) * slope;
  }
  double resetPathDot(double h, double slope, double curvature, double hDot) const {
    if (p.detachReset) return 0.0;  // the reset's spike is a constant: no derivative through it
    if (p.softReset) return -p.vThreshold * curvature * hDot;
    return (-2 * slope + (vr() - h) * curvature) * hDot;  // d(1 - s)/dh = -g', d((vr - h) g')/dh = -g' + (vr - h) g''
  }
  // dx (and dxDot when the tangent inputs are given): BPTT from the last step, dL/dv carried back.
  void backward(const std::vector<double>& h, const std::vector<double>& dS, const std::vector<double>* hDot,
                const std::vector<double>* dSDot, std::vector<double>& dx, std::vector<double>* dxDot) const {
    const size_t inputs = p.staticInput ? size_t(p.width) : size();
    dx.assign(inputs, 0.0);
    if (dxDot) dxDot->assign(inputs, 0.0);
    for (int64_t i = 0; i < p.width; ++i) {
      double dv = 0, dvDot = 0;
      for (int64_t t = p.steps - 1; t >= 0; --t) {
        const size_t at = size_t(t * p.width + i), in = size_t((p.staticInput ? 0 : t) * p.width + i);
        double g, slope, curvature;
        surrogate.eval(h[at] - p.vThreshold, g, slope, curvature);
        const double path = resetPath(h[at], slope);
        const double dh = dS[at] * slope + dv * path;
        dx[in] += dh * dhdx();
        if (dxDot) {
          const double hd = (*hDot)[at];
          const double dhDot = (*dSDot)[at] * slope + dS[at] * curvature * hd + dvDot * path +
                               dv * resetPathDot(h[at], slope, curvature, hd);
          (*dxDot)[in] += dhDot * dhdx();
          dvDot = dhDot * dhdv();
        }
        dv = dh * dhdv();
      }
    }
  }
  // The forward tangent (R-op): hDot = dh/dv vDot + dh/dx xDot, sDot = g' hDot, vDot = hDot (reset path).
  void forwardTangent(const std::vector<double>& h, const std::vector<double>& xDot, std::vector<double>& hDot,
                      std::vector<double>& sDot) const {
    hDot.assign(size(), 0.0);
    sDot.assign(size(), 0.0);
    for (int64_t i = 0; i < p.width; ++i) {
      double vDot = 0;
      for (int64_t t = 0; t < p.steps; ++t) {
        const size_t at = size_t(t * p.width + i);
        double g, slope, curvature;
        surrogate.eval(h[at] - p.vThreshold, g, slope, curvature);
        hDot[at] = dhdv() * vDot + dhdx() * input(xDot, t, i);
        sDot[at] = slope * hDot[at];
        vDot = hDot[at] * resetPath(h[at], slope);
      }
    }
  }
};

NeuronParams neuronParams(NeuronKind kind, bool softReset, double vReset, double tau, bool decayInput, bool detachReset,
                          SurrogateKind surrogate, double alpha, bool spiking, bool staticInput, int64_t steps, int64_t width) {
  return NeuronParams{kind, 1.0, vReset, softReset, tau, decayInput, detachReset, surrogate, alpha, spiking, staticInput, steps, width};
}

// Inputs on a grid of 1/32 and tau in {2, 4}: every charge and reset is exact in float, so the float kernel and
// the double reference agree on every spike (a spike is a comparison with the threshold).
// (Times tau with decayInput, where the input is divided by tau.) Inputs from -0.5 to 1.5 thresholds.
template <class T>
std::vector<T> neuronInputs(Random& random, size_t n, const NeuronParams& p) {
  const int scale = p.kind == NeuronKind::LIF && p.decayInput ? int(p.tau) : 1;
  std::vector<T> x(n);
  for (T& v : x) v = T(scale * random.integer(-16, 48)) / T(32);
  return x;
}

// The references' tangents are the derivatives of their primal passes (smooth mode, reset not detached, where
// the primal is differentiable): checked here by central differences, so the recurrences above are right.
void checkNeuronReferenceTangents(const NeuronReference& ref, uint64_t seed) {
  Random random(seed);
  const size_t inputs = ref.p.staticInput ? size_t(ref.p.width) : ref.size();
  const std::vector<double> x = random.values<double>(inputs, -0.5, 1.5), xDot = random.values<double>(inputs),
                            dS = random.values<double>(ref.size()), dSDot = random.values<double>(ref.size()),
                            hDot = random.values<double>(ref.size());
  std::vector<double> spikes, h, hDotRef, sDotRef, dx, dxDot;
  ref.forward(x, spikes, h);
  ref.forwardTangent(h, xDot, hDotRef, sDotRef);
  const auto forwardAlong = [&](double e) {
    std::vector<double> s, hh;
    ref.forward(along(x, xDot, e), s, hh);
    hh.insert(hh.end(), s.begin(), s.end());
    return hh;
  };
  std::vector<double> both = hDotRef;
  both.insert(both.end(), sDotRef.begin(), sDotRef.end());
  expectNear(both, centralDifference(forwardAlong, 1e-6), 1e-6, "reference neuron forward tangent vs differences");
  ref.backward(h, dS, &hDot, &dSDot, dx, &dxDot);
  const auto backwardAlong = [&](double e) {
    std::vector<double> d;
    ref.backward(along(h, hDot, e), along(dS, dSDot, e), nullptr, nullptr, d, nullptr);
    return d;
  };
  expectNear(dxDot, centralDifference(backwardAlong, 1e-6), 1e-6, "reference neuron backward tangent vs differences");
}

template <class T>
void checkNeuron(const NeuronParams& p, uint64_t seed) {
  const NeuronReference ref{p, SurrogateReference{p.surrogate, p.alpha}};
  const size_t inputs = p.staticInput ? size_t(p.width) : ref.size();
  Random random(seed);
  const std::vector<T> x = neuronInputs<T>(random, inputs, p), dS = random.values<T>(ref.size()),
                       dSDot = random.values<T>(ref.size()), xDot = random.values<T>(inputs);
  const std::vector<double> dSd = widen(dS), dSDotd = widen(dSDot);
  std::vector<double> spikes, h, dx, dxDot, hDot, sDot;
  ref.forward(widen(x), spikes, h);
  double fired = 0;
  for (double s : spikes) fired += s;
  IKUN_CHECK(!p.spiking || (fired > 0.1 * double(spikes.size()) && fired < 0.9 * double(spikes.size())),
             "the inputs make %g spikes of %zu: too few or too many to test the reset", fired, spikes.size());
  ref.forwardTangent(h, widen(xDot), hDot, sDot);
  std::vector<double> dxOnly;
  ref.backward(h, dSd, nullptr, nullptr, dxOnly, nullptr);

  const std::string name = std::string("neuron<") + typeName<T>() + "> " + (p.kind == NeuronKind::IF ? "IF" : "LIF") +
                           (p.softReset ? " soft" : " hard") + (p.detachReset ? " detached" : "") +
                           (p.spiking ? " spiking" : " smooth") + (p.staticInput ? " static input" : "") + " surrogate " +
                           std::to_string(int(p.surrogate));
  Device<T> dX(x), dSpikes(ref.size()), dH(ref.size()), dDs(dS), dDsDot(dSDot), dDx(inputs), dDxDot(inputs), dXDot(xDot),
      dHDot(ref.size()), dSDotOut(ref.size());
  cuda::neuronForward<T>(p, dX.get(), dSpikes.get(), dH.get());
  expectNear(dSpikes.download(), spikes, tolerance<T>(), name + " spikes");
  expectNear(dH.download(), h, tolerance<T>(), name + " membrane h");
  // The backward passes read h from the device (the kernel's own, float where T is): the reference's h
  // differs from it by rounding, which the surrogate's slope carries into dx within the tolerance.
  cuda::neuronBackward<T>(p, dDs.get(), dH.get(), dDx.get());
  expectNear(dDx.download(), dxOnly, 10 * tolerance<T>(), name + " backward dx");
  cuda::neuronForwardTangent<T>(p, dH.get(), dXDot.get(), dHDot.get(), dSDotOut.get());
  expectNear(dHDot.download(), hDot, 10 * tolerance<T>(), name + " forward tangent hDot");
  expectNear(dSDotOut.download(), sDot, 10 * tolerance<T>(), name + " forward tangent sDot");
  // The backward tangent along the forward tangent's hDot (the kernel's), as the Hessian-vector product runs it.
  const std::vector<double> hDotKernel = widen(dHDot.download());
  ref.backward(h, dSd, &hDotKernel, &dSDotd, dx, &dxDot);
  cuda::neuronBackwardTangent<T>(p, dH.get(), dHDot.get(), dDs.get(), dDsDot.get(), dDx.get(), dDxDot.get());
  expectNear(dDx.download(), dx, 10 * tolerance<T>(), name + " backward tangent dx");
  expectNear(dDxDot.download(), dxDot, 10 * tolerance<T>(), name + " backward tangent dxDot");
}


// The fused neuron + max-pool (2x2 windows that tile the planes) and its unfused twin: the reference is the
// neuron above followed by the pool above at every step; the spike count is the sum of all spikes.
template <class T>
void checkNeuronPool(const NeuronParams& neuron, const Pool2dShape& pool, bool fused, uint64_t seed) {
  const NeuronReference ref{neuron, SurrogateReference{neuron.surrogate, neuron.alpha}};
  const PoolReference stepPool{Pool2dShape{neuron.steps * pool.planes, pool.inHeight, pool.inWidth, pool.kernel, pool.stride}};
  IKUN_CHECK(neuron.width == pool.planes * pool.inHeight * pool.inWidth, "width %lld", (long long)neuron.width);
  const bool tiles = pool.kernel == 2 && pool.stride == 2 && pool.inHeight % 2 == 0 && pool.inWidth % 2 == 0;
  IKUN_CHECK(tiles == fused, "the shape does not take the %s path", fused ? "fused" : "unfused");
  const size_t inputs = neuron.staticInput ? size_t(neuron.width) : ref.size();
  Random random(seed);
  const std::vector<T> x = neuronInputs<T>(random, inputs, neuron);
  std::vector<double> spikes, h, pooled, dx;
  std::vector<int32_t> argmax;
  ref.forward(widen(x), spikes, h);
  stepPool.forward(spikes, pooled, argmax);
  double count = 0;
  for (double s : spikes) count += s;
  const std::vector<T> dPooled = random.values<T>(pooled.size());
  ref.backward(h, stepPool.backward(widen(dPooled), argmax), nullptr, nullptr, dx, nullptr);

  const std::string name = std::string("neuronPool<") + typeName<T>() + "> " + (fused ? "fused" : "unfused") +
                           (neuron.spiking ? " spiking" : " smooth") + (neuron.staticInput ? " static input" : "");
  Device<T> dX(x), dPooledOut(pooled.size()), dDPooled(dPooled), dDx(inputs);
  // one partial count per block of 256 windows (every one written: the buffer starts as NaN), one on the twin
  const int64_t windows = pool.planes * pool.outHeight() * pool.outWidth(), slots = cuda::neuronPoolCountSlots(pool);
  IKUN_CHECK(slots == (fused ? (windows + 255) / 256 : 1), "%lld spike-count slots for %lld windows", (long long)slots,
             (long long)windows);
  Device<double> counts{size_t(slots)};
  cuda::neuronPoolForward<T>(neuron, pool, dX.get(), dPooledOut.get(), counts.get());
  expectNear(dPooledOut.download(), pooled, tolerance<T>(), name + " pooled spikes");
  double counted = 0;
  for (double c : counts.download()) counted += c;
  expectNear(counted, count, tolerance<T>(), name + " spike count (the slots' sum)");
  // Backward finds each window's maximum again (first on ties, as the reference's argmax): the gradient goes
  // where the reference's does. (In smooth mode a window whose two largest rates were within rounding of each
  // other could pick the other; these inputs have none.)
  cuda::neuronPoolBackward<T>(neuron, pool, dX.get(), dDPooled.get(), dDx.get());
  expectNear(dDx.download(), dx, 10 * tolerance<T>(), name + " backward dx");
}

// ---------------------------------------------------------------------------------------------------------
// Losses on firing rates [batch, classes]: the mean squared error to the one-hot label (over every element)
// and the cross-entropy of softmax(rates) (over samples), with their gradients; the count of samples whose
// first largest rate is at the label. A label outside [0, classes) makes the loss NaN.
template <class T>
void checkLosses(int64_t batch, int64_t classes, uint64_t seed) {
  Random random(seed);
  std::vector<T> rate = random.values<T>(size_t(batch * classes), 0.0, 1.0);
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (int32_t& l : labels) l = random.integer(0, int(classes) - 1);
  for (int64_t n = 0; n < batch; n += 7) rate[size_t(n * classes + 1)] = rate[size_t(n * classes)];  // ties between 0 and 1
  double mse = 0, ce = 0, correct = 0;
  std::vector<double> mseGrad(rate.size()), ceGrad(rate.size());
  for (int64_t n = 0; n < batch; ++n) {
    double maxValue = -1e300, denom = 0;
    int64_t best = 0;
    for (int64_t c = 0; c < classes; ++c) {
      const double r = double(rate[size_t(n * classes + c)]);
      maxValue = std::max(maxValue, r);
      if (r > double(rate[size_t(n * classes + best)])) best = c;
    }
    for (int64_t c = 0; c < classes; ++c) denom += std::exp(double(rate[size_t(n * classes + c)]) - maxValue);
    for (int64_t c = 0; c < classes; ++c) {
      const size_t i = size_t(n * classes + c);
      const double target = labels[size_t(n)] == c ? 1.0 : 0.0, r = double(rate[i]);
      mse += (r - target) * (r - target);
      mseGrad[i] = 2 * (r - target) / double(batch * classes);
      ceGrad[i] = (std::exp(r - maxValue) / denom - target) / double(batch);
    }
    ce += std::log(denom) + maxValue - double(rate[size_t(n * classes + labels[size_t(n)])]);
    correct += best == labels[size_t(n)] ? 1 : 0;
  }
  mse /= double(batch * classes);
  ce /= double(batch);
  const std::string name = std::string("loss<") + typeName<T>() + "> " + std::to_string(batch) + "x" + std::to_string(classes);
  Device<T> dRate(rate), dGrad(rate.size());
  Device<int32_t> dLabels(labels);
  ResultSlot loss, sum(1.0);
  cuda::mseRateLoss<T>(batch, classes, dRate.get(), dLabels.get(), dGrad.get(), loss.set(2.0));
  expectNear(loss.value(), 2.0 * mse, 1e-9, name + " mse (scaled by 2)");
  expectNear(dGrad.download(), mseGrad, tolerance<T>(), name + " mse gradient");
  cuda::crossEntropyRateLoss<T>(batch, classes, dRate.get(), dLabels.get(), dGrad.get(), loss.set());
  expectNear(loss.value(), ce, 1e-7, name + " cross-entropy");
  expectNear(dGrad.download(), ceGrad, tolerance<T>(), name + " cross-entropy gradient");
  cuda::countCorrect<T>(batch, classes, dRate.get(), dLabels.get(), sum.add());
  cuda::countCorrect<T>(batch, classes, dRate.get(), dLabels.get(), sum.add(-2.0));
  expectNear(sum.value(), 1.0 - correct, 0.0, name + " correct count (accumulated: 1 + c - 2c)");
  // A label out of range: NaN losses (the bindings cannot check device memory).
  labels[0] = int32_t(classes);
  dLabels.upload(labels);
  cuda::mseRateLoss<T>(batch, classes, dRate.get(), dLabels.get(), dGrad.get(), loss.set());
  IKUN_CHECK(std::isnan(loss.value()), "%s: mse with a label out of range is %g", name.c_str(), loss.value());
  cuda::crossEntropyRateLoss<T>(batch, classes, dRate.get(), dLabels.get(), dGrad.get(), loss.set());
  IKUN_CHECK(std::isnan(loss.value()), "%s: cross-entropy with a label out of range is %g", name.c_str(), loss.value());
}

// ---------------------------------------------------------------------------------------------------------
// SGD and Adam/AdamW as PyTorch defines them (torch.optim, foreach=False), several tensors in one step.
struct SgdReference {
  SgdParams p;
  void apply(double& param, double grad, double* buffer, bool first) const {
    double g = grad + p.weightDecay * param;
    if (buffer) {
      *buffer = first ? g : p.momentum * *buffer + (1 - p.dampening) * g;
      g = p.nesterov ? g + p.momentum * *buffer : *buffer;
    }
    param -= p.lr * g;
  }
};
struct AdamReference {
  AdamParams p;
  void apply(double& param, double grad, double& m, double& v, int64_t step) const {
    double g = grad;
    if (p.decoupledWeightDecay) param *= 1 - p.lr * p.weightDecay;
    else g += p.weightDecay * param;
    m = p.beta1 * m + (1 - p.beta1) * g;
    v = p.beta2 * v + (1 - p.beta2) * g * g;
    const double bias1 = 1 - std::pow(p.beta1, double(step)), bias2 = 1 - std::pow(p.beta2, double(step));
    param -= p.lr / bias1 * m / (std::sqrt(v) / std::sqrt(bias2) + p.eps);
  }
};

template <class T>
void checkSgd(bool nesterov, uint64_t seed) {
  Random random(seed);
  // 70000 elements: two chunks of the kernel's 65536; a tensor without a momentum buffer; one on its first step;
  // 19 tensors: two launches of at most 16 (the second with two chunks of its first tensor)
  std::vector<size_t> sizes{70000, 300, 17};
  std::vector<bool> hasBuffer{true, false, true}, first{false, false, true};
  for (size_t t = 0; t < 16; ++t) {
    sizes.push_back(t == 13 ? 70000 : 5 + 3 * t);
    hasBuffer.push_back(t % 3 != 1);
    first.push_back(t % 4 == 2);
  }
  const SgdParams p{0.1, 0.9, nesterov ? 0.0 : 0.2, 0.01, nesterov, false};
  const SgdReference ref{p};
  std::vector<std::unique_ptr<Device<T>>> params, grads, buffers;
  std::vector<cuda::SgdTensor<T>> tensors;
  std::vector<std::vector<double>> wantParams, wantBuffers;
  for (size_t t = 0; t < sizes.size(); ++t) {
    const std::vector<T> param = random.values<T>(sizes[t]), grad = random.values<T>(sizes[t]),
                         buffer = random.values<T>(sizes[t]);
    std::vector<double> wp = widen(param), wb = widen(buffer);
    for (size_t i = 0; i < sizes[t]; ++i) ref.apply(wp[i], double(grad[i]), hasBuffer[t] ? &wb[i] : nullptr, first[t]);
    wantParams.push_back(wp);
    wantBuffers.push_back(wb);
    params.push_back(std::make_unique<Device<T>>(param));
    grads.push_back(std::make_unique<Device<T>>(grad));
    buffers.push_back(std::make_unique<Device<T>>(buffer));
    tensors.push_back(cuda::SgdTensor<T>{params[t]->get(), grads[t]->get(), hasBuffer[t] ? buffers[t]->get() : nullptr,
                                         int64_t(sizes[t]), first[t]});
  }
  cuda::sgdStep<T>(tensors.data(), int(tensors.size()), p);
  for (size_t t = 0; t < sizes.size(); ++t) {
    const std::string name = std::string("sgd<") + typeName<T>() + ">" + (nesterov ? " nesterov" : "") + " tensor " + std::to_string(t);
    expectNear(params[t]->download(), wantParams[t], tolerance<T>(), name + " parameters");
    expectNear(buffers[t]->download(), wantBuffers[t], tolerance<T>(), name + " momentum buffer");
  }
}

template <class T>
void checkAdam(bool decoupled, uint64_t seed) {
  Random random(seed);
  // each tensor's own count: its own bias corrections; 18 tensors: two launches of at most 16
  std::vector<size_t> sizes{70000, 129};
  std::vector<int64_t> steps{1, 7};
  for (size_t t = 0; t < 16; ++t) {
    sizes.push_back(t == 14 ? 70000 : 3 + 7 * t);
    steps.push_back(int64_t(1 + t % 5));
  }
  const AdamParams p{1e-2, 0.9, 0.999, 1e-8, 0.05, decoupled, 0};
  const AdamReference ref{p};
  std::vector<std::unique_ptr<Device<T>>> params, grads, ms, vs;
  std::vector<cuda::AdamTensor<T>> tensors;
  std::vector<std::vector<double>> wantParams, wantM, wantV;
  for (size_t t = 0; t < sizes.size(); ++t) {
    const std::vector<T> param = random.values<T>(sizes[t]), grad = random.values<T>(sizes[t]),
                         m = random.values<T>(sizes[t], -0.1, 0.1), v = random.values<T>(sizes[t], 0.0, 0.01);
    std::vector<double> wp = widen(param), wm = widen(m), wv = widen(v);
    for (size_t i = 0; i < sizes[t]; ++i) ref.apply(wp[i], double(grad[i]), wm[i], wv[i], steps[t]);
    wantParams.push_back(wp);
    wantM.push_back(wm);
    wantV.push_back(wv);
    params.push_back(std::make_unique<Device<T>>(param));
    grads.push_back(std::make_unique<Device<T>>(grad));
    ms.push_back(std::make_unique<Device<T>>(m));
    vs.push_back(std::make_unique<Device<T>>(v));
    tensors.push_back(cuda::AdamTensor<T>{params[t]->get(), grads[t]->get(), ms[t]->get(), vs[t]->get(), int64_t(sizes[t]), steps[t]});
  }
  cuda::adamStep<T>(tensors.data(), int(tensors.size()), p);
  for (size_t t = 0; t < sizes.size(); ++t) {
    const std::string name = std::string(decoupled ? "adamw<" : "adam<") + typeName<T>() + "> tensor " + std::to_string(t);
    expectNear(params[t]->download(), wantParams[t], tolerance<T>(), name + " parameters");
    expectNear(ms[t]->download(), wantM[t], tolerance<T>(), name + " first moment");
    expectNear(vs[t]->download(), wantV[t], tolerance<T>(), name + " second moment");
  }
}

// ---------------------------------------------------------------------------------------------------------
// Whole-tensor sums (in double: float inputs sum without float rounding).
template <class T>
void checkReductions(int64_t n, uint64_t seed) {
  Random random(seed);
  const std::vector<T> x = random.values<T>(size_t(n)), y = random.values<T>(size_t(n));
  double sum = 0, squares = 0, dot = 0;
  for (size_t i = 0; i < size_t(n); ++i) {
    sum += double(x[i]);
    squares += double(x[i]) * double(x[i]);
    dot += double(x[i]) * double(y[i]);
  }
  const std::string name = std::string("reduce<") + typeName<T>() + "> n " + std::to_string(n);
  Device<T> dX(x), dY(y);
  ResultSlot r(3.0);
  cuda::sum<T>(n, dX.get(), r.set(0.5));
  expectNear(r.value(), 0.5 * sum, 1e-12, name + " sum (scaled)");
  cuda::sumOfSquares<T>(n, dX.get(), r.add());
  expectNear(r.value(), 0.5 * sum + squares, 1e-12, name + " sum of squares (accumulated)");
  cuda::dot<T>(n, dX.get(), dY.get(), r.set());
  expectNear(r.value(), dot, 1e-12, name + " dot");
}

void checkSqrtOfSum() {
  const std::vector<double> values{1.5, 2.25, 0.0, 12.25, 0.5};
  Device<double> dValues(values);
  ResultSlot r(1.0);
  cuda::sqrtOfSum(dValues.get(), int(values.size()), r.add(2.0));
  expectNear(r.value(), 1.0 + 2.0 * std::sqrt(16.5), 1e-12, "sqrtOfSum (accumulated, scaled)");
}

// addToTotals: the commit of a step's metrics, with NaN and infinities among the step's values.
template <class T>
void checkAddToTotals(uint64_t seed) {
  Random random(seed);
  const size_t n = 2000;
  std::vector<T> step = random.values<T>(n), totals = random.values<T>(n), finite(n, T(3));
  for (size_t i = 0; i < n; ++i)
    if (i % 7 == 3) step[i] = std::numeric_limits<T>::quiet_NaN();
    else if (i % 11 == 5) step[i] = std::numeric_limits<T>::infinity() * (i % 2 ? 1 : -1);
  Device<T> dStep(step), dTotals(totals), dFinite(finite), dPlain(totals);
  cuda::addToTotals<T>(int64_t(n), dStep.get(), dTotals.get(), dFinite.get());
  cuda::addToTotals<T>(int64_t(n), dStep.get(), dPlain.get(), nullptr);
  const std::vector<T> gotTotals = dTotals.download(), gotFinite = dFinite.download(), gotPlain = dPlain.download();
  const std::string name = std::string("addToTotals<") + typeName<T>() + ">";
  for (size_t i = 0; i < n; ++i) {
    const T want = totals[i] + step[i];
    const bool same = std::isnan(want) ? std::isnan(gotTotals[i]) && std::isnan(gotPlain[i]) : gotTotals[i] == want && gotPlain[i] == want;
    IKUN_CHECK(same, "%s: total %zu is %g, expected %g", name.c_str(), i, double(gotTotals[i]), double(want));
    IKUN_CHECK(gotFinite[i] == (std::isfinite(want) ? T(4) : T(3)), "%s: finite count %zu is %g", name.c_str(), i, double(gotFinite[i]));
  }
}

// zeroAll over more buffers than one table holds (16), of float, double and int32, empty ones included; the
// bytes just past each buffer stay as they were.
void checkZeroAll() {
  const size_t sizes[] = {20000, 0, 3, 16385, 1};
  std::vector<std::unique_ptr<Device<float>>> buffers;  // each one value longer: the guard after the buffer
  std::vector<void*> pointers;
  std::vector<int64_t> bytes;
  for (size_t t = 0; t < 19; ++t) {
    const size_t n = sizes[t % 5];
    buffers.push_back(std::make_unique<Device<float>>(std::vector<float>(n + 1, 2.5f)));
    pointers.push_back(buffers.back()->get());
    bytes.push_back(int64_t(n * sizeof(float)));
  }
  cuda::zeroAll(pointers.data(), bytes.data(), int(pointers.size()));
  for (size_t t = 0; t < buffers.size(); ++t) {
    const std::vector<float> got = buffers[t]->download();
    for (size_t i = 0; i + 1 < got.size(); ++i)
      IKUN_CHECK(got[i] == 0.0f && !std::signbit(got[i]), "zeroAll: buffer %zu value %zu is %g", t, i, double(got[i]));
    IKUN_CHECK(got.back() == 2.5f, "zeroAll: buffer %zu: the value after it was overwritten", t);
  }
}

// l2NormOfAll over float and double tensors (empty ones, several blocks, more than one table of 16): the
// same bits as each tensor's sumOfSquares into a list and sqrtOfSum of it, and near the host's norm.
void checkL2NormOfAll(size_t tensorCount, uint64_t seed) {
  Random random(seed);
  const size_t sizes[] = {1000, 0, 20000, 5, 9000, 1};
  std::vector<std::unique_ptr<Device<float>>> floats;
  std::vector<std::unique_ptr<Device<double>>> doubles;
  std::vector<cuda::NormTensor> tensors;
  double squares = 0;
  for (size_t t = 0; t < tensorCount; ++t) {
    const size_t n = sizes[t % 6];
    if (t % 3 == 1) {
      const std::vector<double> x = random.values<double>(n);
      for (double v : x) squares += v * v;
      doubles.push_back(std::make_unique<Device<double>>(x));
      tensors.push_back(cuda::NormTensor{nullptr, doubles.back()->get(), int64_t(n)});
    } else {
      const std::vector<float> x = random.values<float>(n);
      for (float v : x) squares += double(v) * double(v);
      floats.push_back(std::make_unique<Device<float>>(x));
      tensors.push_back(cuda::NormTensor{floats.back()->get(), nullptr, int64_t(n)});
    }
  }
  const std::string name = "l2NormOfAll of " + std::to_string(tensorCount) + " tensors";
  Device<double> perTensor(std::vector<double>(std::max<size_t>(1, tensorCount), 0.0));
  for (size_t t = 0; t < tensorCount; ++t) {
    const DeviceResult into{perTensor.get() + t, 1.0, false};
    if (tensors[t].f64) cuda::sumOfSquares<double>(tensors[t].count, tensors[t].f64, into);
    else cuda::sumOfSquares<float>(tensors[t].count, tensors[t].f32, into);
  }
  ResultSlot want(0.25), got(0.25);
  cuda::sqrtOfSum(perTensor.get(), int(std::max<size_t>(1, tensorCount)), want.add(3.0));
  cuda::l2NormOfAll(tensors.data(), int(tensors.size()), got.add(3.0));
  expectNear(got.value(), 0.25 + 3.0 * std::sqrt(squares), 1e-12, name + " (accumulated, scaled)");
  IKUN_CHECK(want.value() == got.value(), "%s: %.17g, not %.17g (the bits of sumOfSquares per tensor and sqrtOfSum)",
             name.c_str(), got.value(), want.value());
  cuda::l2NormOfAll(tensors.data(), int(tensors.size()), got.set());
  expectNear(got.value(), std::sqrt(squares), 1e-12, name + " (set)");
}

// sumsInto: each tensor's sum scaled into its own slot (slots shared by several tensors add up), the same
// bits as sum of each into the same slots, float and double tensors mixed, one and several blocks each.
void checkSumsInto(size_t tensorCount, uint64_t seed) {
  Random random(seed);
  const size_t sizes[] = {1000, 0, 20000, 5, 9000, 1};
  const size_t slots = tensorCount / 2 + 1;
  std::vector<std::unique_ptr<Device<float>>> floats;
  std::vector<std::unique_ptr<Device<double>>> doubles;
  std::vector<double> start(slots), want(slots);
  for (size_t s = 0; s < slots; ++s) start[s] = want[s] = 0.125 * double(s);
  Device<double> viaSum(start), viaSums(start);
  std::vector<cuda::SumInto> sums;
  for (size_t t = 0; t < tensorCount; ++t) {
    const size_t n = sizes[t % 6], slot = t % slots;
    const double scale = 1.0 / double(t + 3);
    double total = 0;
    cuda::NormTensor tensor{nullptr, nullptr, int64_t(n)};
    if (t % 3 == 1) {
      const std::vector<double> x = random.values<double>(n);
      for (double v : x) total += v;
      doubles.push_back(std::make_unique<Device<double>>(x));
      tensor.f64 = doubles.back()->get();
      cuda::sum<double>(int64_t(n), tensor.f64, DeviceResult{viaSum.get() + slot, scale, true});
    } else {
      const std::vector<float> x = random.values<float>(n);
      for (float v : x) total += double(v);
      floats.push_back(std::make_unique<Device<float>>(x));
      tensor.f32 = floats.back()->get();
      cuda::sum<float>(int64_t(n), tensor.f32, DeviceResult{viaSum.get() + slot, scale, true});
    }
    want[slot] += total * scale;
    sums.push_back(cuda::SumInto{tensor, DeviceResult{viaSums.get() + slot, scale, true}});
  }
  cuda::sumsInto(sums.data(), int(sums.size()));
  const std::string name = "sumsInto of " + std::to_string(tensorCount) + " tensors";
  const std::vector<double> got = viaSums.download(), bits = viaSum.download();
  expectNear(got, want, 1e-12, name);
  for (size_t s = 0; s < slots; ++s)
    IKUN_CHECK(got[s] == bits[s], "%s: slot %zu is %.17g, not %.17g (the bits of sum of each)", name.c_str(), s, got[s], bits[s]);
}

// ---------------------------------------------------------------------------------------------------------
// Elementwise ops and the time-axis helpers.
template <class T>
void checkElementwise(uint64_t seed) {
  Random random(seed);
  const int64_t n = 1000, steps = 3, width = 333;
  const std::vector<T> x = random.values<T>(size_t(n)), y0 = random.values<T>(size_t(n)),
                       wide = random.values<T>(size_t(steps * width));
  const std::string name = std::string("elementwise<") + typeName<T>() + ">";
  Device<T> dX(x), dY(y0), dOut(static_cast<size_t>(n)), dRepeated(static_cast<size_t>(steps * width)), dWide(wide), dSummed(static_cast<size_t>(width));
  cuda::fill<T>(n, T(2.5), dOut.get());
  expectNear(dOut.download(), std::vector<double>(size_t(n), 2.5), 0.0, name + " fill");
  cuda::copy<T>(n, dX.get(), dOut.get());
  expectNear(dOut.download(), widen(x), 0.0, name + " copy");
  std::vector<double> want(static_cast<size_t>(n));
  for (size_t i = 0; i < size_t(n); ++i) want[i] = double(y0[i]) + 0.75 * double(x[i]);
  cuda::axpy<T>(n, T(0.75), dX.get(), dY.get());
  expectNear(dY.download(), want, tolerance<T>(), name + " axpy");
  for (double& w : want) w *= -3.0;
  cuda::scale<T>(n, T(-3.0), dY.get());
  expectNear(dY.download(), want, tolerance<T>(), name + " scale");
  Device<float> toFloat(static_cast<size_t>(n));
  Device<double> toDouble(static_cast<size_t>(n));
  cuda::convert<T>(n, dX.get(), toFloat.get(), nullptr);
  cuda::convert<T>(n, dX.get(), nullptr, toDouble.get());
  std::vector<double> asFloat(static_cast<size_t>(n));
  for (size_t i = 0; i < size_t(n); ++i) asFloat[i] = double(float(x[i]));
  expectNear(toFloat.download(), asFloat, 0.0, name + " convert to float");
  expectNear(toDouble.download(), widen(x), 0.0, name + " convert to double");
  std::vector<double> repeated(static_cast<size_t>(steps * width)), summed(size_t(width), 0.0);
  for (int64_t t = 0; t < steps; ++t)
    for (int64_t i = 0; i < width; ++i) {
      repeated[size_t(t * width + i)] = 0.5 * double(x[size_t(i)]);
      summed[size_t(i)] += double(wide[size_t(t * width + i)]);
    }
  for (double& v : summed) v *= 0.25;
  cuda::repeatLeading<T>(steps, width, T(0.5), dX.get(), dRepeated.get());
  expectNear(dRepeated.download(), repeated, 0.0, name + " repeatLeading");
  cuda::sumLeading<T>(steps, width, T(0.25), dWide.get(), dSummed.get());
  expectNear(dSummed.download(), summed, tolerance<T>(), name + " sumLeading");
  // gatherRows: a mini-batch of 5 rows picked by indices[2..6] from 9 rows of 7 values (repeats allowed)
  const int64_t rowCount = 9, rowSize = 7, first = 2, count = 5;
  const std::vector<T> rows = random.values<T>(size_t(rowCount * rowSize));
  const std::vector<int32_t> indices{0, 4, 8, 3, 3, 0, 7, 1};
  std::vector<double> gathered;
  for (int64_t r = 0; r < count; ++r)
    for (int64_t j = 0; j < rowSize; ++j) gathered.push_back(double(rows[size_t(indices[size_t(first + r)] * rowSize + j)]));
  Device<T> dRows(rows), dGathered(static_cast<size_t>(count * rowSize));
  Device<int32_t> dIndices(indices);
  cuda::gatherRows<T>(rowCount, rowSize, dRows.get(), dIndices.get(), first, count, dGathered.get());
  expectNear(dGathered.download(), gathered, 0.0, name + " gatherRows");
}

// ---------------------------------------------------------------------------------------------------------
// Tensor basics: broadcast arithmetic and comparison, scalar forms, argmax and sums along an axis, casts.
// int32 arithmetic wraps around (two's complement), as in PyTorch; argmax takes the first maximum, and the
// first NaN counts as the maximum; casts to int32 truncate toward zero and saturate, NaN gives 0.
double arithmeticReference(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    default: return a / b;
  }
}
int32_t wrapReference(BinaryOp op, int32_t a, int32_t b) {
  const int64_t wide = op == BinaryOp::Add ? int64_t(a) + b : op == BinaryOp::Sub ? int64_t(a) - b : int64_t(a) * b;
  const uint64_t low = uint64_t(wide) & 0xffffffffull;
  return low >= 0x80000000ull ? int32_t(int64_t(low) - (int64_t(1) << 32)) : int32_t(low);
}

// out [2, 3, 4] = a [2, 1, 4] op b [3, 1] (b broadcast over the first and last axes)
BroadcastShape broadcastShape() {
  BroadcastShape s{};
  s.rank = 3;
  const int64_t shape[3] = {2, 3, 4}, aStride[3] = {4, 0, 1}, bStride[3] = {0, 1, 0};
  for (int d = 0; d < 3; ++d) s.shape[d] = shape[d], s.aStride[d] = aStride[d], s.bStride[d] = bStride[d];
  return s;
}

template <class T>
void checkBroadcast(uint64_t seed) {
  constexpr bool integer = std::is_same_v<T, int32_t>;
  Random random(seed);
  const BroadcastShape s = broadcastShape();
  std::vector<T> a(8), b(3);
  for (T& v : a) v = integer ? T(random.integer(-5, 5)) : T(random.uniform());
  for (T& v : b) v = integer ? T(random.integer(-5, 5)) : T(random.uniform(0.5, 2.0));
  if constexpr (integer) a[0] = 2147483600, a[3] = -2147483600, b[1] = 100, b[2] = 70000;  // overflow: wraps
  b[0] = a[0];  // equal somewhere
  const std::string name = std::string("tensor_math<") + (integer ? "int32" : typeName<T>()) + ">";
  Device<T> dA(a), dB(b), dOut(24);
  Device<int32_t> dEqual(24);
  const std::vector<BinaryOp> ops = integer ? std::vector<BinaryOp>{BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul}
                                            : std::vector<BinaryOp>{BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div};
  for (BinaryOp op : ops) {
    std::vector<double> want(24), wantScalar(8);
    for (int64_t i = 0; i < 24; ++i) {
      const int64_t d0 = i / 12, d1 = i / 4 % 3, d2 = i % 4;
      const T av = a[size_t(d0 * 4 + d2)], bv = b[size_t(d1)];
      want[size_t(i)] = integer ? double(wrapReference(op, int32_t(av), int32_t(bv))) : double(T(arithmeticReference(op, av, bv)));
    }
    for (size_t i = 0; i < 8; ++i)
      wantScalar[i] = integer ? double(wrapReference(op, int32_t(a[i]), 3)) : double(T(arithmeticReference(op, a[i], T(3))));
    cuda::binaryBroadcast<T>(op, s, dA.get(), dB.get(), dOut.get());
    expectNear(dOut.download(), want, integer ? 0.0 : tolerance<T>(), name + " broadcast op " + std::to_string(int(op)));
    Device<T> dScalarOut(8);
    cuda::binaryScalar<T>(op, 8, dA.get(), T(3), dScalarOut.get());
    expectNear(dScalarOut.download(), wantScalar, integer ? 0.0 : tolerance<T>(), name + " scalar op " + std::to_string(int(op)));
  }
  std::vector<int32_t> equal(24), equalScalar(8);
  for (int64_t i = 0; i < 24; ++i) equal[size_t(i)] = a[size_t(i / 12 * 4 + i % 4)] == b[size_t(i / 4 % 3)];
  for (size_t i = 0; i < 8; ++i) equalScalar[i] = a[i] == a[2];
  cuda::equalBroadcast<T>(s, dA.get(), dB.get(), dEqual.get());
  expectEqual(dEqual.download(), equal, name + " equalBroadcast");
  Device<int32_t> dEqualScalar(8);
  cuda::equalScalar<T>(8, dA.get(), a[2], dEqualScalar.get());
  expectEqual(dEqualScalar.download(), equalScalar, name + " equalScalar");
}

template <class T>
void checkAxes(uint64_t seed) {
  constexpr bool integer = std::is_same_v<T, int32_t>;
  Random random(seed);
  const std::string name = std::string("tensor_math<") + (integer ? "int32" : typeName<T>()) + ">";
  // argmax over the middle axis of [2, 5, 3], with ties, and NaN in one column
  const AxisShape small{2, 5, 3};
  std::vector<T> x(30);
  for (T& v : x) v = T(random.integer(0, 2));
  if constexpr (!integer) x[1 * 3 + 1] = T(kNaN), x[3 * 3 + 1] = T(kNaN);  // column (0, 1): the first NaN wins
  std::vector<int32_t> argmax(6);
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t i = 0; i < 3; ++i) {
      int64_t best = 0;
      for (int64_t k = 0; k < 5; ++k) {
        const double v = double(x[size_t((o * 5 + k) * 3 + i)]), b = double(x[size_t((o * 5 + best) * 3 + i)]);
        if (std::isnan(b)) break;
        if (std::isnan(v) || v > b) best = k;
      }
      argmax[size_t(o * 3 + i)] = int32_t(best);
    }
  Device<T> dX(x);
  Device<int32_t> dArgmax(6);
  cuda::argmaxAxis<T>(small, dX.get(), dArgmax.get());
  expectEqual(dArgmax.download(), argmax, name + " argmaxAxis");
  // sums along a short axis (one thread per result) and a long one (one block per result)
  for (const AxisShape& shape : {AxisShape{3, 7, 5}, AxisShape{2, 300, 3}}) {
    std::vector<T> v(size_t(shape.outer * shape.axis * shape.inner));
    for (T& e : v) e = integer ? T(random.integer(-1000, 1000)) : T(random.uniform());
    if constexpr (integer) v[0] = 2147483000, v[size_t(shape.inner)] = 2147483000;  // the sum wraps around
    const double scale = integer ? 1.0 : 0.5;
    std::vector<double> want(size_t(shape.outer * shape.inner));
    for (int64_t o = 0; o < shape.outer; ++o)
      for (int64_t i = 0; i < shape.inner; ++i) {
        int64_t total = 0;
        double sum = 0;
        for (int64_t k = 0; k < shape.axis; ++k) {
          const T e = v[size_t((o * shape.axis + k) * shape.inner + i)];
          total += int64_t(e);
          sum += double(e);
        }
        want[size_t(o * shape.inner + i)] = integer ? double(wrapReference(BinaryOp::Add, int32_t(uint32_t(uint64_t(total))), 0))
                                                    : scale * sum;
      }
    Device<T> dV(v), dSum(want.size());
    cuda::sumAxis<T>(shape, scale, dV.get(), dSum.get());
    expectNear(dSum.download(), want, integer ? 0.0 : tolerance<T>(), name + " sumAxis, axis " + std::to_string(shape.axis));
  }
}

template <class From, class To>
void checkCast(const std::vector<From>& x, const std::vector<double>& want, const std::string& what) {
  Device<From> dX(x);
  Device<To> dY(x.size());
  cuda::cast<From, To>(int64_t(x.size()), dX.get(), dY.get());
  expectNear(dY.download(), want, 0.0, "cast " + what);
}

void checkCasts() {
  const double big = 3e9;
  const std::vector<float> f{1.75f, -1.75f, 0.0f, float(kNaN), float(big), float(-big), 2147483520.0f, -0.5f};
  const std::vector<double> d{1.75, -1.75, 1e-300, kNaN, big, -big, 2147483647.5, -2147483648.7};
  const std::vector<int32_t> i{7, -7, 0, 2147483647, -2147483647 - 1, 16777217, 3, -1};
  checkCast<float, int32_t>(f, {1, -1, 0, 0, 2147483647, -2147483648.0, 2147483520, 0}, "float -> int32 (truncate, saturate, NaN 0)");
  checkCast<double, int32_t>(d, {1, -1, 0, 0, 2147483647, -2147483648.0, 2147483647, -2147483648.0}, "double -> int32");
  checkCast<float, double>(f, widen(f), "float -> double");
  std::vector<double> narrowed(d.size());
  for (size_t k = 0; k < d.size(); ++k) narrowed[k] = double(float(d[k]));
  checkCast<double, float>(d, narrowed, "double -> float");
  checkCast<float, float>(f, widen(f), "float -> float");
  checkCast<double, double>(d, d, "double -> double");
  std::vector<double> iToFloat(i.size());
  for (size_t k = 0; k < i.size(); ++k) iToFloat[k] = double(float(i[k]));
  checkCast<int32_t, float>(i, iToFloat, "int32 -> float (rounded)");
  checkCast<int32_t, double>(i, widen(i), "int32 -> double");
  checkCast<int32_t, int32_t>(i, widen(i), "int32 -> int32");
}

}  // namespace families

using namespace families;

IKUN_TEST_CASE(family_gemm, "gemm: all four transposes, beta 0 (C unread) and 0.5, ragged tiles, split-K, float and double") {
  onDevice([] {
    uint64_t seed = 1;
    for (bool transA : {false, true})
      for (bool transB : {false, true}) {
        checkGemm<float>(transA, transB, 0.5, seed++);
        checkGemm<float>(transA, transB, 0.0, seed++);
      }
    checkGemm<double>(true, false, 0.5, seed++);
    checkGemm<double>(false, true, 0.0, seed++);
    checkGemm<float>(false, true, 0.5, seed++, 600);
    checkGemm<double>(true, false, 0.0, seed++, 600);
    withPrecision(cuda::CudaPrecision::Tf32, [&] {
      for (bool transA : {false, true})
        for (bool transB : {false, true}) {
          checkGemm<float>(transA, transB, 0.5, seed++);
          checkGemm<float>(transA, transB, 0.0, seed++, 40, true);  // 16-byte lines, whole and partial slices
        }
      checkGemm<float>(false, true, 0.5, seed++, 600, true);  // both operands in 16-byte lines, k split in two
      checkGemm<double>(true, true, 0.5, seed++);  // float64 stays exact under TF32
    });
    // bf16 pairs from every staging variant: along k (scalar, swapping halves with the neighbour lane, and
    // 16-byte runs) and across k (scalar and 16-byte lines), whole and partial slices, split k
    withPrecision(cuda::CudaPrecision::Bf16, [&] {
      for (bool transA : {false, true})
        for (bool transB : {false, true}) {
          checkGemm<float>(transA, transB, 0.5, seed++);
          checkGemm<float>(transA, transB, 0.0, seed++, 40, true);
        }
      checkGemm<float>(false, true, 0.5, seed++, 600, true);
      checkGemm<double>(true, false, 0.0, seed++);  // float64 stays exact under bf16
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// FastDivisor (the index splits of the implicit-GEMM loaders): quotient and remainder against plain division,
// for every divisor up to 300, the powers of two and their neighbours up to 2^31, and numerators at the
// edges (0, around multiples of d, up to 2^31 - 1), on the host and in a kernel.
__global__ void fastDivideKernel(cuda::FastDivisor divisor, const uint32_t* n, uint32_t* quotient, uint32_t* remainder, int64_t count) {
  for (int64_t i = cuda::globalThreadIndex(); i < count; i += cuda::globalThreadCount())
    quotient[i] = divisor.split(n[i], remainder[i]);
}

std::vector<uint32_t> fastDivideNumerators(uint32_t d, Random& random) {
  const uint32_t top = 0x7fffffffu;
  std::vector<uint32_t> n{0, 1, 2, d - 1, d, d + 1, top, top - 1, top - d + 1, top / d * d, top / d * d - 1};
  for (uint32_t q : {2u, 3u, 1000u, top / d / 2, top / d - 1})
    for (int64_t off : {-1, 0, 1}) n.push_back(uint32_t(int64_t(q) * d + off));
  for (int i = 0; i < 200; ++i) n.push_back(uint32_t(random.uniform(0.0, 1.0) * double(top)));
  std::vector<uint32_t> inRange;
  for (uint32_t v : n)
    if (v <= top) inRange.push_back(v);
  return inRange;
}

IKUN_TEST_CASE(family_fast_divide, "FastDivisor: quotients and remainders of the conv loaders' index splits, host and device") {
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 300; ++d) divisors.push_back(d);
  for (int b = 9; b <= 31; ++b)
    for (int64_t off : {-1, 0, 1}) {
      const int64_t d = (int64_t(1) << b) + off;
      if (d <= (int64_t(1) << 31)) divisors.push_back(uint32_t(d));
    }
  for (uint32_t d : {784u, 196u, 49u, 12544u, 1152u, 100000u, 2147483647u}) divisors.push_back(d);
  Random random(91);
  for (uint32_t d : divisors) {
    const cuda::FastDivisor divisor(d);
    for (uint32_t n : fastDivideNumerators(d, random)) {
      uint32_t r = 0;
      const uint32_t q = divisor.split(n, r);
      IKUN_CHECK(q == n / d && r == n % d, "%u / %u: got %u rest %u", n, d, q, r);
    }
  }
  onDevice([&] {
    for (size_t i = 0; i < divisors.size(); i += 7) {
      const uint32_t d = divisors[i];
      const std::vector<uint32_t> n = fastDivideNumerators(d, random);
      Device<uint32_t> dN(n), dQ(n.size()), dR(n.size());
      cuda::launch(fastDivideKernel, cuda::blocksFor(int64_t(n.size())), dim3(cuda::kThreads), 0, cuda::currentStream(),
                   cuda::FastDivisor(d), dN.get(), dQ.get(), dR.get(), int64_t(n.size()));
      const std::vector<uint32_t> q = dQ.download(), r = dR.download();
      for (size_t j = 0; j < n.size(); ++j) IKUN_CHECK(q[j] == n[j] / d && r[j] == n[j] % d, "device: %u / %u: got %u rest %u", n[j], d, q[j], r[j]);
    }
  });
  bool refused = false;
  try {
    cuda::FastDivisor zero(0);
  } catch (const std::invalid_argument&) {
    refused = true;
  }
  IKUN_CHECK(refused, "a divisor of 0 must be refused");
}

IKUN_TEST_CASE(family_conv2d, "conv2d forward, backward input and weight: bias, stride 2, padding, split-K") {
  onDevice([] {
    // stride 2, padding 1, a 3x3 kernel over 7x6 planes (4x3 outputs); with and without bias
    const Conv2dShape strided{2, 3, 7, 6, 4, 3, 3, 2, 1};
    checkConv2d<float>(strided, true, 11);
    checkConv2d<float>(strided, false, 12);
    checkConv2d<double>(strided, true, 13);
    // a 1x2 kernel without padding (taps off the square), and 2 * 16 * 16 = 512 pixels per weight: the weight
    // gradient splits k in two
    checkConv2d<float>(Conv2dShape{1, 2, 5, 5, 3, 1, 2, 1, 0}, true, 14);
    checkConv2d<float>(Conv2dShape{2, 2, 16, 16, 3, 3, 3, 1, 1}, true, 15);
    // stride 3 with a 2x3 kernel and padding 2 (the loaders' stride and kernel-width splits), and the CSNN's
    // 3x3 / padding 1 over 28x28 planes
    checkConv2d<float>(Conv2dShape{2, 3, 11, 9, 2, 2, 3, 3, 2}, true, 18);
    checkConv2d<double>(Conv2dShape{2, 3, 11, 9, 2, 2, 3, 3, 2}, false, 19);
    checkConv2d<float>(Conv2dShape{1, 2, 28, 28, 3, 3, 3, 1, 1}, false, 20);
    // 64 input (output) channels over a 3x3 kernel, 576 deep for one tile: the forward (input gradient) splits k
    checkConv2d<float>(Conv2dShape{1, 64, 4, 4, 2, 3, 3, 1, 1}, true, 22);
    checkConv2d<double>(Conv2dShape{1, 2, 4, 4, 64, 3, 3, 1, 1}, false, 23);
    withPrecision(cuda::CudaPrecision::Tf32, [&] {
      checkConv2d<float>(strided, true, 16);
      checkConv2d<float>(Conv2dShape{2, 2, 16, 16, 3, 3, 3, 1, 1}, false, 17);
      checkConv2d<float>(Conv2dShape{2, 3, 11, 9, 2, 2, 3, 3, 2}, true, 21);
      checkConv2d<float>(Conv2dShape{1, 64, 4, 4, 2, 3, 3, 1, 1}, true, 24);
      // the tap tables over many slices, whole and partial, at unit stride (forward K 36, input gradient
      // K 216, weight gradient K 162): each slice's taps filled two slices ahead
      checkConv2d<float>(Conv2dShape{2, 4, 9, 9, 24, 3, 3, 1, 1}, false, 25);
      // dy's planes of 36 pixels staged in 16-byte runs for the weight gradient, over 72 output channels (both
      // lines a thread stages), k = 72 ending in a partial slice; unaligned weight rows (27 floats)
      checkConv2d<float>(Conv2dShape{2, 3, 6, 6, 72, 3, 3, 1, 1}, true, 27);
      // the masked taps' edges: 32 taps (4x8, padding 2, tap 31 in the masks), a 1x32 row (a whole word
      // per kernel row), and 36 taps, past the masks (the row and column tests)
      checkConv2d<float>(Conv2dShape{1, 2, 9, 12, 3, 4, 8, 1, 2}, true, 28);
      checkConv2d<float>(Conv2dShape{1, 1, 3, 40, 2, 1, 32, 1, 3}, false, 29);
      checkConv2d<float>(Conv2dShape{1, 2, 8, 8, 3, 6, 6, 1, 2}, true, 30);
    });
    withPrecision(cuda::CudaPrecision::Bf16, [&] {
      checkConv2d<float>(strided, true, 31);
      checkConv2d<float>(Conv2dShape{2, 4, 9, 9, 24, 3, 3, 1, 1}, false, 32);  // tap tables over many slices
      checkConv2d<float>(Conv2dShape{2, 3, 6, 6, 72, 3, 3, 1, 1}, true, 33);  // dy's planes in 16-byte runs
      checkConv2d<float>(Conv2dShape{1, 2, 9, 12, 3, 4, 8, 1, 2}, true, 34);  // masked taps
    });
  });
}

IKUN_TEST_CASE(family_linear, "linear forward (with and without bias), backward input and weight, split-K over features and batch") {
  onDevice([] {
    checkLinear<float>(LinearShape{5, 70, 9}, 21);
    checkLinear<double>(LinearShape{3, 17, 66}, 22);
    checkLinear<float>(LinearShape{512, 3, 2}, 23);  // k = batch = 512: the weight gradient splits k in two
    checkLinear<float>(LinearShape{2, 1024, 3}, 25);  // k = 1024 features over one tile: the forward splits k in 4
    withPrecision(cuda::CudaPrecision::Tf32, [&] {
      checkLinear<float>(LinearShape{5, 70, 9}, 24);
      // 16-byte rows (96 and 72 floats): 16-byte staging of x, w and dy, over more than 64 rows and columns (both
      // lines a thread stages); k = 100 (the weight gradient's batch) ends in a partial slice
      checkLinear<float>(LinearShape{100, 96, 72}, 26);
    });
    withPrecision(cuda::CudaPrecision::Bf16, [&] {
      checkLinear<float>(LinearShape{5, 70, 9}, 27);
      checkLinear<float>(LinearShape{100, 96, 72}, 28);
    });
  });
}

IKUN_TEST_CASE(family_batchnorm, "batchnorm train/eval forward, backward (with and without dx) and both tangents, one and several blocks per channel") {
  onDevice([] {
    checkBatchNorm<float>(BatchNormShape{3, 2, 37}, 1, 31);    // 111 values per channel: fewer than the block's threads
    checkBatchNorm<float>(BatchNormShape{4, 3, 100}, 3, 32);   // 400 per channel: strided; replicas 3
    checkBatchNorm<double>(BatchNormShape{2, 2, 150}, 1, 33);
    // several blocks per channel (about 4096 values each), with planes wider than a block, narrower
    // than one (a block's stride spans samples and wraps inside a plane) and of one value (BatchNorm1d)
    checkBatchNorm<float>(BatchNormShape{3, 2, 3000}, 1, 34);
    checkBatchNorm<float>(BatchNormShape{100, 3, 49}, 2, 35);
    checkBatchNorm<double>(BatchNormShape{5000, 2, 1}, 1, 36);
  });
}

IKUN_TEST_CASE(family_maxpool, "max-pool forward (ties), backward and gather (argmax outside the plane)") {
  onDevice([] {
    checkMaxPool<float>(Pool2dShape{3, 6, 5, 2, 2}, 41);  // odd width: the last column is in no window
    checkMaxPool<float>(Pool2dShape{2, 7, 7, 3, 2}, 42);  // overlapping windows
    checkMaxPool<double>(Pool2dShape{2, 8, 6, 2, 2}, 43);
  });
}

IKUN_TEST_CASE(family_neuron, "neuron forward, backward and both tangents: IF/LIF, soft/hard reset, detach, 4 surrogates") {
  using K = NeuronKind;
  using S = SurrogateKind;
  // The references' tangents against central differences (smooth mode, reset not detached), both reset modes.
  checkNeuronReferenceTangents(NeuronReference{neuronParams(K::LIF, false, 0.0, 2.0, true, false, S::ATan, 2.0, false, false, 3, 5),
                                               SurrogateReference{S::ATan, 2.0}}, 51);
  checkNeuronReferenceTangents(NeuronReference{neuronParams(K::IF, true, 0.0, 1.0, false, false, S::Sigmoid, 4.0, false, true, 4, 5),
                                               SurrogateReference{S::Sigmoid, 4.0}}, 52);
  onDevice([] {
    const int64_t steps = 4, width = 300;  // two blocks, the second partial
    checkNeuron<float>(neuronParams(K::IF, true, 0.0, 1.0, false, false, S::ATan, 2.0, true, false, steps, width), 53);
    checkNeuron<float>(neuronParams(K::LIF, false, -0.25, 2.0, true, true, S::Sigmoid, 4.0, true, false, steps, width), 54);
    checkNeuron<float>(neuronParams(K::LIF, false, 0.25, 4.0, false, false, S::Erf, 1.5, false, true, steps, width), 55);
    checkNeuron<float>(neuronParams(K::IF, false, 0.0, 1.0, false, false, S::Rect, 1.0, true, true, steps, width), 56);
    checkNeuron<float>(neuronParams(K::LIF, true, 0.0, 2.0, true, true, S::ATan, 2.0, false, false, steps, width), 57);
    checkNeuron<double>(neuronParams(K::LIF, false, 0.0, 2.0, true, false, S::Sigmoid, 4.0, true, true, steps, width), 58);
  });
}

IKUN_TEST_CASE(family_neuron_pool, "fused neuron + 2x2 max-pool (forward, spike count, backward) and its unfused twin") {
  using K = NeuronKind;
  using S = SurrogateKind;
  onDevice([] {
    // 2x2 windows tile 6x8 planes: the fused kernels; 3 planes x 48 pixels = 144 neurons
    checkNeuronPool<float>(neuronParams(K::LIF, false, 0.0, 2.0, true, false, S::ATan, 2.0, true, false, 3, 144),
                           Pool2dShape{3, 6, 8, 2, 2}, true, 61);
    checkNeuronPool<float>(neuronParams(K::IF, true, 0.0, 1.0, false, true, S::Sigmoid, 4.0, false, true, 3, 144),
                           Pool2dShape{3, 6, 8, 2, 2}, true, 62);
    checkNeuronPool<double>(neuronParams(K::IF, false, 0.0, 1.0, false, false, S::Rect, 1.0, true, true, 2, 144),
                            Pool2dShape{3, 6, 8, 2, 2}, true, 63);
    // the membranes in registers up to 8 steps, in scratch beyond (the twin of the fused backward)
    checkNeuronPool<float>(neuronParams(K::IF, true, 0.0, 1.0, false, true, S::Sigmoid, 4.0, false, true, 8, 144),
                           Pool2dShape{3, 6, 8, 2, 2}, true, 66);
    checkNeuronPool<float>(neuronParams(K::LIF, false, 0.0, 2.0, true, false, S::ATan, 2.0, true, false, 10, 144),
                           Pool2dShape{3, 6, 8, 2, 2}, true, 67);
    checkNeuronPool<double>(neuronParams(K::IF, false, 0.0, 1.0, false, false, S::Rect, 1.0, true, true, 9, 144),
                            Pool2dShape{3, 6, 8, 2, 2}, true, 68);
    // 40 planes of 16x16: 2560 windows, the spikes counted over 10 blocks, the last one partly outside
    checkNeuronPool<float>(neuronParams(K::IF, true, 0.0, 1.0, false, false, S::ATan, 2.0, true, false, 2, 40 * 256),
                           Pool2dShape{40, 16, 16, 2, 2}, true, 69);
    checkNeuronPool<double>(neuronParams(K::LIF, false, 0.0, 2.0, true, false, S::Sigmoid, 4.0, false, true, 2, 40 * 256),
                            Pool2dShape{40, 16, 16, 2, 2}, true, 70);
    // 7x6 planes (odd height) and 3x3 windows with stride 2: the unfused twin (neuron, pool, reduction)
    checkNeuronPool<float>(neuronParams(K::LIF, false, 0.0, 2.0, true, false, S::ATan, 2.0, true, false, 3, 84),
                           Pool2dShape{2, 7, 6, 2, 2}, false, 64);
    checkNeuronPool<float>(neuronParams(K::IF, true, 0.0, 1.0, false, false, S::ATan, 2.0, true, true, 2, 98),
                           Pool2dShape{2, 7, 7, 3, 2}, false, 65);
  });
}

IKUN_TEST_CASE(family_loss, "mse and cross-entropy rate losses with gradients, correct count, labels out of range") {
  onDevice([] {
    checkLosses<float>(300, 10, 71);     // more samples than a block's threads
    checkLosses<double>(5, 3, 72);
    checkLosses<float>(1000, 10, 73);    // 10000 squared errors: two blocks of the reduction
  });
}

IKUN_TEST_CASE(family_optim, "sgd (momentum, dampening, nesterov, weight decay, first step) and adam/adamw, multi-tensor") {
  onDevice([] {
    checkSgd<float>(false, 81);
    checkSgd<float>(true, 82);
    checkSgd<double>(false, 83);
    checkAdam<float>(false, 84);
    checkAdam<float>(true, 85);
    checkAdam<double>(true, 86);
  });
}

IKUN_TEST_CASE(family_reduce, "sum, sumOfSquares, dot (one and several blocks), sqrtOfSum, l2NormOfAll and sumsInto, scaled and accumulated; addToTotals, zeroAll") {
  onDevice([] {
    checkReductions<float>(1000, 91);
    checkReductions<float>(20000, 92);  // three blocks of partial sums
    checkReductions<double>(20000, 93);
    checkSqrtOfSum();
    for (size_t count : {0, 1, 6, 16, 19, 40}) checkL2NormOfAll(count, 94 + count);
    for (size_t count : {0, 1, 6, 16, 19, 40}) checkSumsInto(count, 194 + count);
    checkZeroAll();
    checkAddToTotals<float>(95);
    checkAddToTotals<double>(96);
  });
}

IKUN_TEST_CASE(family_elementwise, "fill (float, double, int32), copy, axpy, scale, convert, repeatLeading, sumLeading, gatherRows") {
  onDevice([] {
    checkElementwise<float>(101);
    checkElementwise<double>(102);
    Device<int32_t> filled(600);
    cuda::fill<int32_t>(600, -7, filled.get());
    expectEqual(filled.download(), std::vector<int32_t>(600, -7), "elementwise<int32> fill");
  });
}

IKUN_TEST_CASE(family_tensor_math, "binaryBroadcast/Scalar (int32 wraps), equal, argmaxAxis (ties, NaN), sumAxis, cast") {
  onDevice([] {
    checkBroadcast<float>(111);
    checkBroadcast<double>(112);
    checkBroadcast<int32_t>(113);
    checkAxes<float>(114);
    checkAxes<double>(115);
    checkAxes<int32_t>(116);
    checkCasts();
  });
}
