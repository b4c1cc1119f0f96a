// Exact Hessian-vector products by forward-over-reverse (Pearlmutter's R-operator): one forward pass
// carrying tangents along v, then the backward pass and its tangent, whose parameter-gradient tangents
// are H v. About two gradient evaluations; no Hessian is formed. Spikes stay Heaviside forward; their
// derivative is the surrogate g' and its derivative g'' (ikun-paper.md, "Hessian analysis"). With
// detachReset the reset's spike is a constant in every pass, as in PyTorch's double backward through a
// detached tensor (in smooth mode this differs from differentiating the detached gradient numerically).
import { describe, fail } from './errors.js';
import * as lossFns from './loss.js';
import { native } from './native.js';
import type { Module } from './nn/module.js';
import { Tensor, formatShape } from './tensor.js';

function checkVectors(model: Module, vectors: unknown): Tensor[] {
  const params = model.namedParameters();
  if (!Array.isArray(vectors)) fail(`hessian.hvp: vectors must be a Tensor[] in the order of model.namedParameters(), got ${describe(vectors)}`);
  if (vectors.length !== params.length)
    fail(`hessian.hvp: got ${vectors.length} vectors for the model's ${params.length} parameters (${params.map(([n]) => n).join(', ')})`);
  vectors.forEach((v, i) => {
    const [name, p] = params[i]!;
    if (!(v instanceof Tensor)) fail(`hessian.hvp: vectors[${i}] (for '${name}') must be a Tensor, got ${describe(v)}`);
    v.checkAlive(`hessian.hvp vectors[${i}]`);
    if (v.shape.length !== p.shape.length || v.shape.some((d, j) => d !== p.shape[j]))
      fail(`hessian.hvp: vectors[${i}] has shape ${formatShape(v.shape)}, parameter '${name}' has ${formatShape(p.shape)}`);
    if (v.dtype !== p.dtype) fail(`hessian.hvp: vectors[${i}] is ${v.dtype}, parameter '${name}' is ${p.dtype}`);
    if (v.device !== p.device) fail(`hessian.hvp: vectors[${i}] is on ${v.device}, parameter '${name}' is on ${p.device}`);
  });
  return vectors as Tensor[];
}

/**
 * H v for loss = loss.mseRate(model(inputs), labels), H the Hessian over the parameters, in the model's
 * current train/eval mode. `vectors` and the result follow model.namedParameters(). In train mode the
 * BatchNorm running statistics are left as they were.
 */
export function hvp(model: Module, inputs: Tensor, labels: readonly number[] | Int32Array, vectors: Tensor[]): Tensor[] {
  const params = model.parameters();
  const vs = checkVectors(model, vectors);
  if (!(inputs instanceof Tensor)) fail(`hessian.hvp: inputs must be a Tensor, got ${describe(inputs)}`);
  const buffers = model.training ? model.namedBuffers().map(([, b]) => [b, b.clone()] as const) : [];
  params.forEach((p, i) => {
    p.tangent = vs[i]!;
    p.gradTangent = Tensor.zeros(p.shape, p.dtype, p.device);
  });
  try {
    const [out, outDot] = model.forwardDual(inputs, null);
    const { grad } = lossFns.mseRate(out, labels);
    // d/dv of the MSE gradient 2 (rate - onehot) / (N C) along rateDot
    const gradDot = outDot.clone();
    native.scale(gradDot.storage, 2 / out.size);
    model.backwardDual(grad, gradDot, false);
    for (const t of [grad, gradDot, out, outDot]) if (t.storage !== inputs.storage) t.dispose();
    return params.map((p) => p.gradTangent!);
  } finally {
    for (const p of params) {
      p.tangent = null;
      p.gradTangent = null;
    }
    for (const [b, saved] of buffers) {
      b.copyFrom(saved);
      saved.dispose();
    }
    model.resetState();
  }
}
