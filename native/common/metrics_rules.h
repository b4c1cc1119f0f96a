// The running totals of a training loop's metrics (metrics.ts, EpochAccumulator): a step's numbers added
// into the epoch's, and per total the count of steps after which it was still finite, which gives the
// first bad step of an epoch without reading the device after every step. Shared by the CPU and CUDA
// kernels (elementwise.cpp / elementwise.cu).
#pragma once
#include "hd.h"

namespace ikun {

// total += step; finiteSteps += 1 when the new total is finite (finiteSteps may be null). x - x is 0 for
// a finite x and NaN for a NaN or an infinity, and NaN == 0 is false: no library call, the same on both.
template <class T>
IKUN_HD void addToTotal(T step, T& total, T* finiteSteps) {
  total += step;
  if (finiteSteps) *finiteSteps += (total - total == T(0)) ? T(1) : T(0);
}

}  // namespace ikun
