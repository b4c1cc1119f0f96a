// Bindings for the tensor basics (argmax, sums, arithmetic, comparison, casts). The TypeScript layer
// (lib/tensor-math.ts) works out broadcast shapes and dtype promotion; these checks keep a misused raw
// binding from reading or writing out of bounds.
#include <cmath>
#include <string>

#include "args.h"

namespace ikun::napi {
namespace {

void requireDType(Napi::Env env, Storage* s, DType dtype, const char* name) {
  if (s->dtype() != dtype)
    throw Napi::TypeError::New(env, std::string(name) + " must be " + dtypeName(dtype) + ", got " + dtypeName(s->dtype()));
}

int64_t integerEntry(Napi::Env env, Napi::Array array, uint32_t i, const char* name) {
  Napi::Value v = array[i];
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= 0) || d != std::floor(d) || d > 2147483647.0)
    throw Napi::RangeError::New(env, std::string(name) + " must hold integers in [0, 2^31)");
  return int64_t(d);
}

// dims: [rank, shape..., aStrides..., bStrides...]; checks that every offset reached lies inside a and b.
BroadcastShape broadcastArg(const Napi::CallbackInfo& info, size_t index, Storage* a, Storage* b, Storage* out) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsArray()) throw Napi::TypeError::New(env, "broadcast dims must be an array");
  auto array = info[index].As<Napi::Array>();
  BroadcastShape s{};
  s.rank = array.Length() > 0 ? int(integerEntry(env, array, 0, "broadcast dims")) : 0;
  if (s.rank < 1 || s.rank > kMaxBroadcastRank || array.Length() != uint32_t(1 + 3 * s.rank))
    throw Napi::RangeError::New(env, "broadcast dims must be [rank, shape..., aStrides..., bStrides...] with 1 <= rank <= 8");
  double count = 1, aLast = 0, bLast = 0;
  for (int d = 0; d < s.rank; ++d) {
    s.shape[d] = integerEntry(env, array, uint32_t(1 + d), "broadcast dims");
    s.aStride[d] = integerEntry(env, array, uint32_t(1 + s.rank + d), "broadcast dims");
    s.bStride[d] = integerEntry(env, array, uint32_t(1 + 2 * s.rank + d), "broadcast dims");
    count *= double(s.shape[d]);
    if (s.shape[d] > 0) aLast += double(s.shape[d] - 1) * double(s.aStride[d]), bLast += double(s.shape[d] - 1) * double(s.bStride[d]);
  }
  if (count != double(out->count())) throw Napi::RangeError::New(env, "broadcast: the output holds a different element count");
  if (count > 0 && (aLast >= double(a->count()) || bLast >= double(b->count())))
    throw Napi::RangeError::New(env, "broadcast: strides reach past an operand");
  return s;
}

AxisShape axisArg(const Napi::CallbackInfo& info, size_t index, Storage* x, Storage* out) {
  auto d = intsArg(info, index, 3, "axis dims");
  AxisShape s{d[0], d[1], d[2]};
  requireCount(info.Env(), x, s.outer * s.axis * s.inner, "x");
  requireCount(info.Env(), out, s.outer * s.inner, "out");
  return s;
}

// A scalar applied to an int32 tensor must be an int32 value (the TypeScript layer promotes otherwise).
void requireScalarFits(Napi::Env env, Storage* a, double scalar) {
  if (a->dtype() == DType::Int32 && !(scalar == std::floor(scalar) && scalar >= -2147483648.0 && scalar <= 2147483647.0))
    throw Napi::RangeError::New(env, "scalar: an int32 tensor takes an int32 scalar");
}

BinaryOp binaryOpArg(const Napi::CallbackInfo& info, size_t index, Storage* a) {
  const double code = numberArg(info, index, "op");
  if (!(code == 0 || code == 1 || code == 2 || code == 3)) throw Napi::RangeError::New(info.Env(), "op must be 0 (add), 1 (sub), 2 (mul) or 3 (div)");
  const auto op = BinaryOp(int(code));
  if (op == BinaryOp::Div && a->dtype() == DType::Int32)
    throw Napi::TypeError::New(info.Env(), "div: int32 tensors are divided as floats; convert them first");
  return op;
}

// binaryOp(op, a, b, out, dims): out = a op b, broadcast (all of one dtype)
Napi::Value BinaryOpBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *a = storageArg(info, 1, "a"), *b = storageArg(info, 2, "b"), *out = storageArg(info, 3, "out");
  const BinaryOp op = binaryOpArg(info, 0, a);
  requireSameDType(env, {a, b, out});
  const BroadcastShape s = broadcastArg(info, 4, a, b, out);
  dispatchNumeric(env, "binaryOp", a, {a, b, out}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, binaryBroadcast<T>(op, s, ptr<T>(a), ptr<T>(b), ptr<T>(out)));
  });
  return env.Undefined();
}

// binaryScalarOp(op, a, scalar, out): out = a op scalar (same element count and dtype)
Napi::Value BinaryScalarOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *a = storageArg(info, 1, "a"), *out = storageArg(info, 3, "out");
  const BinaryOp op = binaryOpArg(info, 0, a);
  const double scalar = numberArg(info, 2, "scalar");
  requireScalarFits(env, a, scalar);
  requireSameDType(env, {a, out});
  requireCount(env, out, int64_t(a->count()), "out");
  dispatchNumeric(env, "binaryScalarOp", a, {a, out}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, binaryScalar<T>(op, int64_t(a->count()), ptr<T>(a), T(scalar), ptr<T>(out)));
  });
  return env.Undefined();
}

// equal(a, b, out, dims): out (int32) = a == b, broadcast
Napi::Value Equal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *a = storageArg(info, 0, "a"), *b = storageArg(info, 1, "b"), *out = storageArg(info, 2, "out");
  requireSameDType(env, {a, b});
  requireDType(env, out, DType::Int32, "out");
  const BroadcastShape s = broadcastArg(info, 3, a, b, out);
  dispatchNumeric(env, "equal", a, {a, b, out}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, equalBroadcast<T>(s, ptr<T>(a), ptr<T>(b), ptr<int32_t>(out)));
  });
  return env.Undefined();
}

// equalScalar(a, scalar, out): out (int32) = a == scalar
Napi::Value EqualScalar(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *a = storageArg(info, 0, "a"), *out = storageArg(info, 2, "out");
  const double scalar = numberArg(info, 1, "scalar");
  requireScalarFits(env, a, scalar);
  requireDType(env, out, DType::Int32, "out");
  requireCount(env, out, int64_t(a->count()), "out");
  dispatchNumeric(env, "equalScalar", a, {a, out}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, equalScalar<T>(int64_t(a->count()), ptr<T>(a), T(scalar), ptr<int32_t>(out)));
  });
  return env.Undefined();
}

// argmaxAxis(x, out, [outer, axis, inner]): out (int32) [outer, inner]
Napi::Value ArgmaxAxis(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *out = storageArg(info, 1, "out");
  requireDType(env, out, DType::Int32, "out");
  const AxisShape s = axisArg(info, 2, x, out);
  if (s.axis < 1) throw Napi::RangeError::New(env, "argmaxAxis: the axis is empty");
  dispatchNumeric(env, "argmaxAxis", x, {x, out}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, argmaxAxis<T>(s, ptr<T>(x), ptr<int32_t>(out)));
  });
  return env.Undefined();
}

// sumAxis(x, out, [outer, axis, inner], scale): out [outer, inner] = scale * sum over the axis
Napi::Value SumAxis(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *out = storageArg(info, 1, "out");
  requireSameDType(env, {x, out});
  const AxisShape s = axisArg(info, 2, x, out);
  const double scale = numberArg(info, 3, "scale");
  if (x->dtype() == DType::Int32 && scale != 1) throw Napi::RangeError::New(env, "sumAxis: an int32 sum takes no scale");
  dispatchNumeric(env, "sumAxis", x, {x, out}, [&](auto tag, auto device) {
    using T = decltype(tag);
    IKUN_RUN(device, sumAxis<T>(s, scale, ptr<T>(x), ptr<T>(out)));
  });
  return env.Undefined();
}

// cast(x, out): out = x converted to out's dtype (same element count)
Napi::Value Cast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Storage *x = storageArg(info, 0, "x"), *out = storageArg(info, 1, "out");
  if (out->count() != x->count()) throw Napi::RangeError::New(env, "cast: element counts differ");
  dispatchNumeric(env, "cast", x, {x, out}, [&](auto from, auto device) {
    using From = decltype(from);
    auto into = [&](auto to) {
      using To = decltype(to);
      IKUN_RUN(device, cast<From, To>(int64_t(x->count()), ptr<From>(x), ptr<To>(out)));
    };
    switch (out->dtype()) {
      case DType::Float32: into(float{}); break;
      case DType::Float64: into(double{}); break;
      default: into(int32_t{}); break;
    }
  });
  return env.Undefined();
}

}  // namespace

void registerTensorOps(Napi::Env env, Napi::Object exports) {
  exports.Set("binaryOp", Napi::Function::New<guarded<BinaryOpBinding>>(env, "binaryOp"));
  exports.Set("binaryScalarOp", Napi::Function::New<guarded<BinaryScalarOp>>(env, "binaryScalarOp"));
  exports.Set("equal", Napi::Function::New<guarded<Equal>>(env, "equal"));
  exports.Set("equalScalar", Napi::Function::New<guarded<EqualScalar>>(env, "equalScalar"));
  exports.Set("argmaxAxis", Napi::Function::New<guarded<ArgmaxAxis>>(env, "argmaxAxis"));
  exports.Set("sumAxis", Napi::Function::New<guarded<SumAxis>>(env, "sumAxis"));
  exports.Set("cast", Napi::Function::New<guarded<Cast>>(env, "cast"));
}

}  // namespace ikun::napi
