// Convolution as im2col + one BLAS GEMM per chunk of samples. The chunk puts several samples' patch
// columns side by side ([patch, chunk * pixels]) so the GEMM is large enough to run at the BLAS rate.
#include <algorithm>
#include <vector>

#include "kernels.h"
#include "parallel.h"
#include "workspace.h"

namespace ikun::cpu {
namespace {

constexpr int64_t kColumnBudget = int64_t(1) << 22;  // elements of the im2col buffer per chunk

constexpr int64_t kCacheBlock = int64_t(1) << 20;  // elements; 2^19 and 2^21 measured slower on the paper's conv2

// Samples whose patch columns (about 4 MB) a core's share of the cache keeps between im2col and the GEMM.
int64_t samplesPerCacheBlock(const Conv2dShape& s) {
  const int64_t perSample = std::max<int64_t>(1, s.patchSize() * s.outHeight() * s.outWidth());
  return std::max<int64_t>(1, kCacheBlock / perSample);
}

// When one sample's columns exceed the cache block, per-thread groups would gain nothing and would keep a
// sample-sized scratch buffer on every thread; such layers take the chunked paths (one shared buffer).
bool fitsCacheBlock(const Conv2dShape& s) { return s.patchSize() * s.outHeight() * s.outWidth() <= kCacheBlock; }

// Samples per task of the forward: one cache block, or a fair share of a small batch.
int64_t samplesPerTask(const Conv2dShape& s) {
  const int64_t fairShare = (s.batch + threadCount() - 1) / threadCount();
  return std::max<int64_t>(1, std::min(fairShare, samplesPerCacheBlock(s)));
}

int64_t chunkSamples(const Conv2dShape& s) {
  int64_t perSample = s.patchSize() * s.outHeight() * s.outWidth();
  return std::max<int64_t>(1, std::min<int64_t>(s.batch, kColumnBudget / std::max<int64_t>(1, perSample)));
}

// Output positions [begin, end) along one axis (outSize of them) whose input position
// o * stride - padding + offset lies in [0, inSize); outside it the patch reads padding zeros.
inline void validRange(int64_t outSize, int64_t inSize, int64_t stride, int64_t padding, int64_t offset,
                       int64_t& begin, int64_t& end) {
  begin = 0;
  while (begin < outSize && begin * stride - padding + offset < 0) ++begin;
  end = outSize;
  while (end > begin && (end - 1) * stride - padding + offset >= inSize) --end;
}

// Output columns of patch column kj that read inside the image.
inline void validColumns(const Conv2dShape& s, int64_t kj, int64_t& begin, int64_t& end) {
  validRange(s.outWidth(), s.inWidth, s.stride, s.padding, kj, begin, end);
}

// Output rows of patch row ki that read inside the image.
inline void validRows(const Conv2dShape& s, int64_t ki, int64_t& begin, int64_t& end) {
  validRange(s.outHeight(), s.inHeight, s.stride, s.padding, ki, begin, end);
}

// One patch row of one sample when the output rows are as wide as the input rows (stride 1, "same"
// padding, as in the paper's 3x3 convolutions): the valid part is then one shifted contiguous block of
// the input plane. Copy it in one piece and zero the padded border afterwards, instead of a short copy
// per 14-pixel row.
template <class T>
void im2colSameWidthRow(const Conv2dShape& s, const T* plane, int64_t ki, int64_t kj, T* out) {
  const int64_t oh = s.outHeight(), ow = s.outWidth();
  int64_t i0, i1, j0, j1;
  validRows(s, ki, i0, i1);
  validColumns(s, kj, j0, j1);
  if (i0 >= i1 || j0 >= j1) {
    std::fill(out, out + oh * ow, T(0));
    return;
  }
  // out[i * ow + j] = plane[(i - padding + ki) * W + (j - padding + kj)]; with ow == W that is a constant shift.
  const int64_t first = i0 * ow + j0, last = (i1 - 1) * ow + j1;  // [first, last) of out
  const int64_t shift = (ki - s.padding) * s.inWidth + (kj - s.padding);
  std::copy(plane + (first + shift), plane + (last + shift), out + first);
  std::fill(out, out + first, T(0));
  std::fill(out + last, out + oh * ow, T(0));
  // inside the copied block, the border columns took neighbouring rows' pixels: zero them
  for (int64_t i = i0; i < i1; ++i) {
    T* row = out + i * ow;
    for (int64_t j = 0; j < j0; ++j) row[j] = T(0);
    for (int64_t j = j1; j < ow; ++j) row[j] = T(0);
  }
}

// col[k, b * P + p] = x[n0 + b] at the input pixel that patch row k reads for output pixel p (0 if padded).
template <class T>
void im2col(const Conv2dShape& s, const T* x, int64_t n0, int64_t count, T* col) {
  const int64_t oh = s.outHeight(), ow = s.outWidth(), pixels = oh * ow, k = s.patchSize();
  const int64_t kk = s.kernelHeight * s.kernelWidth, cols = count * pixels;
  const bool sameWidth = s.stride == 1 && ow == s.inWidth;
  parallelFor(k * count, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t row = r / count, b = r % count;
      const int64_t c = row / kk, ki = (row % kk) / s.kernelWidth, kj = row % s.kernelWidth;
      const T* plane = x + ((n0 + b) * s.inChannels + c) * s.inHeight * s.inWidth;
      T* out = col + row * cols + b * pixels;
      if (sameWidth) {
        im2colSameWidthRow(s, plane, ki, kj, out);
        continue;
      }
      int64_t j0, j1;
      validColumns(s, kj, j0, j1);
      for (int64_t i = 0; i < oh; ++i) {
        const int64_t ih = i * s.stride - s.padding + ki;
        T* outRow = out + i * ow;
        if (ih < 0 || ih >= s.inHeight) {
          std::fill(outRow, outRow + ow, T(0));
          continue;
        }
        const T* inRow = plane + ih * s.inWidth - s.padding + kj;
        std::fill(outRow, outRow + j0, T(0));
        if (s.stride == 1) std::copy(inRow + j0, inRow + j1, outRow + j0);
        else
          for (int64_t j = j0; j < j1; ++j) outRow[j] = inRow[j * s.stride];
        std::fill(outRow + j1, outRow + ow, T(0));
      }
    }
  });
}

// dx[n0 + b] += scatter of dcol (the adjoint of im2col); one thread per (sample, channel) plane.
template <class T>
void col2imAdd(const Conv2dShape& s, const T* dcol, int64_t n0, int64_t count, T* dx) {
  const int64_t oh = s.outHeight(), ow = s.outWidth(), pixels = oh * ow;
  const int64_t kk = s.kernelHeight * s.kernelWidth, cols = count * pixels;
  parallelFor(count * s.inChannels, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t b = q / s.inChannels, c = q % s.inChannels;
      T* plane = dx + ((n0 + b) * s.inChannels + c) * s.inHeight * s.inWidth;
      for (int64_t ki = 0; ki < s.kernelHeight; ++ki) {
        for (int64_t kj = 0; kj < s.kernelWidth; ++kj) {
          int64_t j0, j1;
          validColumns(s, kj, j0, j1);
          const T* in = dcol + (c * kk + ki * s.kernelWidth + kj) * cols + b * pixels;
          for (int64_t i = 0; i < oh; ++i) {
            const int64_t ih = i * s.stride - s.padding + ki;
            if (ih < 0 || ih >= s.inHeight) continue;
            T* rowOut = plane + ih * s.inWidth - s.padding + kj;
            const T* rowIn = in + i * ow;
            for (int64_t j = j0; j < j1; ++j) rowOut[j * s.stride] += rowIn[j];
          }
        }
      }
    }
  });
}

// Moves between NCHW [count, C, P] and the GEMM layout [C, count * P].
template <class T>
void samplesToChannelMajor(int64_t count, int64_t channels, int64_t pixels, const T* src, T* dst) {
  parallelFor(channels * count, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r / count, b = r % count;
      copy(pixels, src + (b * channels + c) * pixels, dst + c * count * pixels + b * pixels);
    }
  });
}

template <class T>
void channelMajorToSamples(int64_t count, int64_t channels, int64_t pixels, const T* src, const T* bias, T* dst) {
  parallelFor(channels * count, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r / count, b = r % count;
      const T* in = src + c * count * pixels + b * pixels;
      T* out = dst + (b * channels + c) * pixels;
      const T add = bias ? bias[c] : T(0);
      for (int64_t p = 0; p < pixels; ++p) out[p] = in[p] + add;
    }
  });
}

}  // namespace

// Each task takes a group of samples through im2col, the GEMM and the copy back to NCHW on one thread,
// so the group's patch columns are read back from that core's cache rather than from memory, and no
// thread waits at a barrier between the three phases. Tasks are independent: each writes its own
// samples of y.
template <class T>
void conv2dForwardByChunks(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t pixels = s.outHeight() * s.outWidth(), k = s.patchSize(), chunk = chunkSamples(s);
  T* col = workspace<T>(0, size_t(k * chunk * pixels));
  T* out = workspace<T>(1, size_t(s.outChannels * chunk * pixels));
  for (int64_t n0 = 0; n0 < s.batch; n0 += chunk) {
    const int64_t count = std::min(chunk, s.batch - n0), cols = count * pixels;
    im2col(s, x, n0, count, col);
    gemm<T>(false, false, s.outChannels, cols, k, T(1), w, k, col, cols, T(0), out, cols);
    channelMajorToSamples(count, s.outChannels, pixels, out, bias, y + n0 * s.outChannels * pixels);
  }
}

template <class T>
void conv2dForward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  if (!fitsCacheBlock(s)) return conv2dForwardByChunks(s, x, w, bias, y);
  const int64_t pixels = s.outHeight() * s.outWidth(), k = s.patchSize();
  const int64_t group = samplesPerTask(s), tasks = (s.batch + group - 1) / group;
  parallelFor(tasks, 1, [&](int64_t t0, int64_t t1) {
    T* col = workspace<T>(0, size_t(k * group * pixels));
    T* out = workspace<T>(1, size_t(s.outChannels * group * pixels));
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t n0 = task * group, count = std::min(group, s.batch - n0), cols = count * pixels;
      im2col(s, x, n0, count, col);  // (nested parallel loops run inline on this thread)
      gemm<T>(false, false, s.outChannels, cols, k, T(1), w, k, col, cols, T(0), out, cols);
      channelMajorToSamples(count, s.outChannels, pixels, out, bias, y + n0 * s.outChannels * pixels);
    }
  });
}

// For stride 1 the input gradient is itself a convolution: dy (padded by k - 1 - padding) with the weight
// flipped in space and its channel axes swapped. That runs as the forward's large GEMM (K = out * kh * kw)
// instead of a thin GEMM with K = out followed by a scatter-add (col2im), about 1.5x faster here.
template <class T>
bool conv2dBackwardInputAsConvolution(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  // With few input channels the flipped convolution's GEMM is too thin (M = inChannels) and its im2col of
  // dy too large; the direct path is cheaper there (e.g. a first layer on grey images).
  if (s.stride != 1 || s.padding > s.kernelHeight - 1 || s.padding > s.kernelWidth - 1 ||
      s.kernelHeight != s.kernelWidth || s.inChannels < 16)
    return false;
  const int64_t kh = s.kernelHeight, kw = s.kernelWidth;
  std::vector<T> flipped(size_t(s.outChannels * s.inChannels * kh * kw));
  for (int64_t co = 0; co < s.outChannels; ++co)
    for (int64_t ci = 0; ci < s.inChannels; ++ci)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          flipped[((ci * s.outChannels + co) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)] = w[((co * s.inChannels + ci) * kh + i) * kw + j];
  Conv2dShape t{s.batch, s.outChannels, s.outHeight(), s.outWidth(), s.inChannels, kh, kw, 1, kh - 1 - s.padding};
  conv2dForward<T>(t, dy, flipped.data(), nullptr, dx);
  return true;
}

template <class T>
void conv2dBackwardInput(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  if (conv2dBackwardInputAsConvolution(s, dy, w, dx)) return;
  const int64_t pixels = s.outHeight() * s.outWidth(), k = s.patchSize(), chunk = chunkSamples(s);
  T* dcol = workspace<T>(0, size_t(k * chunk * pixels));
  T* grad = workspace<T>(1, size_t(s.outChannels * chunk * pixels));
  fill(s.batch * s.inChannels * s.inHeight * s.inWidth, T(0), dx);
  for (int64_t n0 = 0; n0 < s.batch; n0 += chunk) {
    const int64_t count = std::min(chunk, s.batch - n0), cols = count * pixels;
    samplesToChannelMajor(count, s.outChannels, pixels, dy + n0 * s.outChannels * pixels, grad);
    gemm<T>(true, false, k, cols, s.outChannels, T(1), w, k, grad, cols, T(0), dcol, cols);
    col2imAdd(s, dcol, n0, count, dx);
  }
}

// The weight gradient with the GEMM split over the threads (output blocks), a chunk of samples at a time.
template <class T>
void conv2dBackwardWeightByChunks(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  const int64_t pixels = s.outHeight() * s.outWidth(), k = s.patchSize(), chunk = chunkSamples(s);
  T* col = workspace<T>(0, size_t(k * chunk * pixels));
  T* grad = workspace<T>(1, size_t(s.outChannels * chunk * pixels));
  for (int64_t n0 = 0; n0 < s.batch; n0 += chunk) {
    const int64_t count = std::min(chunk, s.batch - n0), cols = count * pixels;
    im2col(s, x, n0, count, col);
    samplesToChannelMajor(count, s.outChannels, pixels, dy + n0 * s.outChannels * pixels, grad);
    gemm<T>(false, true, s.outChannels, k, cols, T(1), grad, cols, col, cols, T(1), dw, k);
  }
}

// The weight gradient by partial sums: the batch is cut into `wanted` sample ranges or fewer (a number
// that depends on the shapes only, never on the thread count); one thread takes each range through
// im2col and the GEMM, a cache block of samples at a time, into its own partial gradient. The partials
// are then added in order, so the result does not depend on the thread count.
template <class T>
void conv2dBackwardWeightByPartials(const Conv2dShape& s, const T* x, const T* dy, T* dw, int64_t wanted) {
  const int64_t pixels = s.outHeight() * s.outWidth(), k = s.patchSize(), weightSize = s.outChannels * k;
  const int64_t perPartial = (s.batch + wanted - 1) / wanted, partials = (s.batch + perPartial - 1) / perPartial;
  const int64_t group = std::min(perPartial, samplesPerCacheBlock(s));
  // The calling thread's scratch (slot 2; the tasks use 0 and 1). Each partial's first GEMM has beta 0,
  // and no partial is empty, so every entry is written before it is read.
  T* partialSums = workspace<T>(2, size_t(partials * weightSize));
  parallelFor(partials, 1, [&](int64_t p0, int64_t p1) {
    T* col = workspace<T>(0, size_t(k * group * pixels));
    T* grad = workspace<T>(1, size_t(s.outChannels * group * pixels));
    for (int64_t part = p0; part < p1; ++part) {
      T* acc = partialSums + part * weightSize;
      const int64_t begin = part * perPartial, end = std::min(s.batch, begin + perPartial);
      for (int64_t n0 = begin; n0 < end; n0 += group) {
        const int64_t count = std::min(group, end - n0), cols = count * pixels;
        im2col(s, x, n0, count, col);  // (nested parallel loops run inline on this thread)
        samplesToChannelMajor(count, s.outChannels, pixels, dy + n0 * s.outChannels * pixels, grad);
        gemm<T>(false, true, s.outChannels, k, cols, T(1), grad, cols, col, cols, n0 == begin ? T(0) : T(1), acc, k);
      }
    }
  });
  parallelFor(weightSize, 1024, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T total = partialSums[i];
      for (int64_t part = 1; part < partials; ++part) total += partialSums[part * weightSize + i];
      dw[i] += total;
    }
  });
}

// At most kWeightPartials partial sums, and at most kPartialBytes of them (large weights get fewer);
// with fewer than two, the GEMM itself is split over the threads instead.
constexpr int64_t kWeightPartials = 16;
constexpr int64_t kPartialBytes = int64_t(64) << 20;

template <class T>
void conv2dBackwardWeight(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  const int64_t pixels = s.outHeight() * s.outWidth(), weightSize = s.outChannels * s.patchSize();
  const int64_t affordable = kPartialBytes / std::max<int64_t>(1, weightSize * int64_t(sizeof(T)));
  const int64_t wanted = std::min({kWeightPartials, s.batch, affordable});
  if (wanted < 2 || !fitsCacheBlock(s)) conv2dBackwardWeightByChunks(s, x, dy, dw);
  else conv2dBackwardWeightByPartials(s, x, dy, dw, wanted);
  if (dbias) {
    parallelFor(s.outChannels, 4, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double sum = 0;
        for (int64_t n = 0; n < s.batch; ++n) {
          const T* plane = dy + (n * s.outChannels + c) * pixels;
          for (int64_t i = 0; i < pixels; ++i) sum += plane[i];
        }
        dbias[c] += T(sum);
      }
    });
  }
}

#define IKUN_INSTANTIATE(T)                                                                         \
  template void conv2dForward<T>(const Conv2dShape&, const T*, const T*, const T*, T*);              \
  template void conv2dBackwardInput<T>(const Conv2dShape&, const T*, const T*, T*);                  \
  template void conv2dBackwardWeight<T>(const Conv2dShape&, const T*, const T*, T*, T*);
IKUN_INSTANTIATE(float)
IKUN_INSTANTIATE(double)
#undef IKUN_INSTANTIATE

}  // namespace ikun::cpu
