// One time step of a multi-step IF/LIF neuron and of its BPTT and tangent passes, for one neuron: the
// one copy of these formulas, called by the CPU kernels (native/cpu/neuron_impl.h) and the CUDA kernels
// (native/cuda/neuron.cu). Equations: ikun-paper.md, "Neurons".
//
// A NeuronStep bundles the surrogate, the layer's constants and its flags (reset mode, detachReset,
// forward mode). The CPU instantiates it with a concrete surrogate type and FixedNeuronFlags
// (compile-time constants, so its vectorised loops carry no branch on them); the GPU with
// RuntimeSurrogate and RuntimeNeuronFlags (uniform branches: every thread of a launch takes the same
// side, so one kernel serves every case). Same formulas, same roundings.
#pragma once
#include "hd.h"
#include "shapes.h"
#include "surrogate.h"

namespace ikun {

struct RuntimeNeuronFlags {
  bool soft, detach, spiking;
};

template <bool Soft, bool Detach, bool Spiking>
struct FixedNeuronFlags {
  static constexpr bool soft = Soft, detach = Detach, spiking = Spiking;
};

template <class T, class Surrogate, class Flags>
struct NeuronStep {
  Surrogate surrogate;
  Flags flags;
  // The charge is h = a v + b x + c (IF: a = b = 1, c = 0; LIF with decayInput: v + (x - (v - vr)) / tau;
  // without: v - (v - vr) / tau + x).
  T a, b, c, vth, vReset;

  IKUN_HD NeuronStep(Surrogate s, Flags f, const NeuronParams& p) : surrogate(s), flags(f) {
    vth = T(p.vThreshold);
    vReset = p.softReset ? T(0) : T(p.vReset);
    const T tau = T(p.tau);
    if (p.kind == NeuronKind::IF) a = T(1), b = T(1), c = T(0);
    else if (p.decayInput) a = T(1) - T(1) / tau, b = T(1) / tau, c = vReset / tau;
    else a = T(1) - T(1) / tau, b = T(1), c = vReset / tau;
  }

  // SpikingJelly starts the membrane at v_reset (0 for soft reset).
  IKUN_HD T initialMembrane() const { return vReset; }
  IKUN_HD T charge(T v, T x) const { return a * v + b * x + c; }

  // The spike at membrane h: the Heaviside step, or the smooth primitive g in smooth mode.
  IKUN_HD T spike(T h) const {
    if (flags.spiking) return h - vth >= T(0) ? T(1) : T(0);
    return surrogate.g(h - vth);
  }

  // The spike at h; the membrane after the reset goes to v.
  IKUN_HD T fire(T h, T& v) const {
    const T s = spike(h);
    if (flags.soft) v = h - vth * s;
    else v = h * (T(1) - s) + vReset * s;
    return s;
  }

  // dv[t]/dh[t] through the reset ("reset path"), given slope = g'(h - vth); with detachReset the spike in
  // the reset is a constant.
  IKUN_HD T resetPath(T h, T slope) const {
    if (flags.soft) return flags.detach ? T(1) : T(1) - vth * slope;
    const T s = spike(h);
    return flags.detach ? T(1) - s : (T(1) - s) + (vReset - h) * slope;
  }

  // The derivative of the reset path along hDot (for the Hessian tangents), given g' and g''.
  IKUN_HD T resetPathDot(T h, T slope, T curvature, T hDot) const {
    if (flags.detach) return T(0);
    if (flags.soft) return -vth * curvature * hDot;
    return (-T(2) * slope + (vReset - h) * curvature) * hDot;
  }

  // One BPTT step: dh = ds g'(h - vth) + dv * (reset path), dv = dL/dv[t] carried back from step t + 1.
  // Returns dh; leaves dL/dv[t-1] = a dh in dv. The input gradient of the step is b dh.
  IKUN_HD T backward(T h, T ds, T& dv) const {
    const T slope = surrogate.g1(h - vth);
    const T dh = ds * slope + dv * resetPath(h, slope);
    dv = dh * a;
    return dh;
  }

  // One step of the forward tangent (R-op): hDot = a vDot + b xDot, sDot = g'(u) hDot (in both forward
  // modes, ikun-paper.md "Hessian analysis"); vDot follows the reset. Returns hDot, writes sDot and vDot.
  IKUN_HD T forwardTangent(T h, T xDot, T& vDot, T& sDot) const {
    const T slope = surrogate.g1(h - vth);
    const T hd = a * vDot + b * xDot;
    sDot = slope * hd;
    vDot = hd * resetPath(h, slope);
    return hd;
  }

  // One step of the tangent of BPTT: dh = ds g' + dv R(h) differentiated along hDot and the incoming
  // gradient's tangent dsDot, dhDot = dsDot g' + ds g'' hDot + dvDot R + dv Rdot. Returns dh, writes dhDot,
  // and carries dv = a dh, dvDot = a dhDot to the step before.
  IKUN_HD T backwardTangent(T h, T hDot, T ds, T dsDot, T& dv, T& dvDot, T& dhDot) const {
    const T u = h - vth;
    const T slope = surrogate.g1(u), curvature = surrogate.g2(u);
    const T path = resetPath(h, slope);
    const T pathDot = resetPathDot(h, slope, curvature, hDot);
    const T dh = ds * slope + dv * path;
    dhDot = dsDot * slope + ds * curvature * hDot + dvDot * path + dv * pathDot;
    dv = dh * a;
    dvDot = dhDot * a;
    return dh;
  }
};

}  // namespace ikun
