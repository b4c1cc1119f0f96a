// Surrogate spike functions: primitive g, derivative g' (used by BPTT) and g'' (used by Hessian-vector
// products). x = h - v_threshold. Formulas: shared/docs/ikun-paper.md, "Surrogates".
// The primitive g is what the smooth mode (spiking = false) runs forward, so that d g / dx = g' exactly.
#pragma once
#include <cmath>
#include "hd.h"

namespace ikun {

enum class SurrogateKind : int {
  ATan = 0,
  Sigmoid = 1,
  PiecewiseQuadratic = 2,
  SoftSign = 3,
  SuperSpike = 4,
  Erf = 5,
  PiecewiseExp = 6,
  Rect = 7,
};

template <class T>
IKUN_HD T signOf(T x) { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0)); }

template <class T> struct ATanSurrogate {
  T alpha;
  IKUN_HD T g(T x) const { const T pi = T(3.14159265358979323846); return std::atan(pi / 2 * alpha * x) / pi + T(0.5); }
  IKUN_HD T g1(T x) const { const T pi = T(3.14159265358979323846); T u = pi / 2 * alpha * x; return alpha / 2 / (1 + u * u); }
  IKUN_HD T g2(T x) const {
    const T pi = T(3.14159265358979323846); T c = pi / 2 * alpha; T u = c * x; T d = 1 + u * u;
    return -alpha * c * c * x / (d * d);
  }
};

template <class T> struct SigmoidSurrogate {
  T alpha;
  IKUN_HD T sig(T x) const { return T(1) / (T(1) + std::exp(-alpha * x)); }
  IKUN_HD T g(T x) const { return sig(x); }
  IKUN_HD T g1(T x) const { T s = sig(x); return alpha * s * (1 - s); }
  IKUN_HD T g2(T x) const { T s = sig(x); return alpha * alpha * s * (1 - s) * (1 - 2 * s); }
};

template <class T> struct PiecewiseQuadraticSurrogate {
  T alpha;
  IKUN_HD T g(T x) const {
    if (x < -1 / alpha) return T(0);
    if (x > 1 / alpha) return T(1);
    return -alpha * alpha * x * std::fabs(x) / 2 + alpha * x + T(0.5);
  }
  IKUN_HD T g1(T x) const { return std::fabs(x) <= 1 / alpha ? -alpha * alpha * std::fabs(x) + alpha : T(0); }
  IKUN_HD T g2(T x) const { return std::fabs(x) <= 1 / alpha ? -alpha * alpha * signOf(x) : T(0); }
};

template <class T> struct SoftSignSurrogate {
  T alpha;
  IKUN_HD T g(T x) const { return T(0.5) * (alpha * x / (1 + std::fabs(alpha * x)) + 1); }
  IKUN_HD T g1(T x) const { T d = 1 + std::fabs(alpha * x); return alpha / (2 * d * d); }
  IKUN_HD T g2(T x) const { T d = 1 + std::fabs(alpha * x); return -alpha * alpha * signOf(x) / (d * d * d); }
};

// g' = alpha / (1 + |x|)^2, so g = 1/2 + alpha x / (1 + |x|) (the primitive with g(0) = 1/2).
template <class T> struct SuperSpikeSurrogate {
  T alpha;
  IKUN_HD T g(T x) const { return T(0.5) + alpha * x / (1 + std::fabs(x)); }
  IKUN_HD T g1(T x) const { T d = 1 + std::fabs(x); return alpha / (d * d); }
  IKUN_HD T g2(T x) const { T d = 1 + std::fabs(x); return -2 * alpha * signOf(x) / (d * d * d); }
};

template <class T> struct ErfSurrogate {
  T alpha;
  IKUN_HD T g(T x) const { return T(0.5) * std::erfc(-alpha * x); }
  IKUN_HD T g1(T x) const { const T sqrtPi = T(1.77245385090551602730); return alpha / sqrtPi * std::exp(-alpha * alpha * x * x); }
  IKUN_HD T g2(T x) const { return -2 * alpha * alpha * x * g1(x); }
};

template <class T> struct PiecewiseExpSurrogate {
  T alpha;
  IKUN_HD T g(T x) const { return x < 0 ? T(0.5) * std::exp(alpha * x) : 1 - T(0.5) * std::exp(-alpha * x); }
  IKUN_HD T g1(T x) const { return alpha / 2 * std::exp(-alpha * std::fabs(x)); }
  IKUN_HD T g2(T x) const { return -alpha * signOf(x) * g1(x); }
};

template <class T> struct RectSurrogate {
  T alpha;
  IKUN_HD T g(T x) const { T y = alpha * x + T(0.5); return y < 0 ? T(0) : (y > 1 ? T(1) : y); }
  IKUN_HD T g1(T x) const { return std::fabs(x) < T(0.5) / alpha ? alpha : T(0); }
  IKUN_HD T g2(T) const { return T(0); }
};

// Calls fn(surrogate) with the concrete surrogate type, so the CPU's inner loops are specialised per
// surrogate (the vectorised loops need the formula fixed at compile time).
template <class T, class Fn>
inline void dispatchSurrogate(SurrogateKind kind, T alpha, Fn&& fn) {
  switch (kind) {
    case SurrogateKind::ATan: fn(ATanSurrogate<T>{alpha}); break;
    case SurrogateKind::Sigmoid: fn(SigmoidSurrogate<T>{alpha}); break;
    case SurrogateKind::PiecewiseQuadratic: fn(PiecewiseQuadraticSurrogate<T>{alpha}); break;
    case SurrogateKind::SoftSign: fn(SoftSignSurrogate<T>{alpha}); break;
    case SurrogateKind::SuperSpike: fn(SuperSpikeSurrogate<T>{alpha}); break;
    case SurrogateKind::Erf: fn(ErfSurrogate<T>{alpha}); break;
    case SurrogateKind::PiecewiseExp: fn(PiecewiseExpSurrogate<T>{alpha}); break;
    case SurrogateKind::Rect: fn(RectSurrogate<T>{alpha}); break;
  }
}

// The surrogate chosen at run time: on the GPU every thread of a launch takes the same branch of the
// switch (a uniform branch, next to free), so the CUDA kernels are compiled once instead of once per
// surrogate. The formulas are those of the concrete types above.
template <class T>
struct RuntimeSurrogate {
  SurrogateKind kind;
  T alpha;
  template <class Fn>
  IKUN_HD T apply(Fn&& fn) const {
    switch (kind) {
      case SurrogateKind::ATan: return fn(ATanSurrogate<T>{alpha});
      case SurrogateKind::Sigmoid: return fn(SigmoidSurrogate<T>{alpha});
      case SurrogateKind::PiecewiseQuadratic: return fn(PiecewiseQuadraticSurrogate<T>{alpha});
      case SurrogateKind::SoftSign: return fn(SoftSignSurrogate<T>{alpha});
      case SurrogateKind::SuperSpike: return fn(SuperSpikeSurrogate<T>{alpha});
      case SurrogateKind::Erf: return fn(ErfSurrogate<T>{alpha});
      case SurrogateKind::PiecewiseExp: return fn(PiecewiseExpSurrogate<T>{alpha});
      default: return fn(RectSurrogate<T>{alpha});
    }
  }
  IKUN_HD T g(T x) const { return apply([x](auto s) { return s.g(x); }); }
  IKUN_HD T g1(T x) const { return apply([x](auto s) { return s.g1(x); }); }
  IKUN_HD T g2(T x) const { return apply([x](auto s) { return s.g2(x); }); }
};

}  // namespace ikun
