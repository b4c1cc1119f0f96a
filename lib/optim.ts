// Optimisers (SGD, Adam, AdamW) with PyTorch's update rules, run in native code, and epoch-level learning-rate
// schedulers (cosine annealing, step decay, linear warm-up) with PyTorch's closed forms (lib/optim/).
//
// Optimisers take a list of parameters, or named pairs such as module.namedParameters(); the names key the
// state dict (`<name>.momentum_buffer`, `<name>.exp_avg`, `<name>.exp_avg_sq`, as in PyTorch's state).
export { Optimizer, type HyperParameters, type NamedParameters, type OptimizerState, type ParameterList } from './optim/optimizer.js';
export { SGD, type SGDOptions } from './optim/sgd.js';
export { Adam, AdamW, type AdamOptions } from './optim/adam.js';
export { accumulateGradNorm, gradNorm } from './optim/grad-norm.js';
export {
  CosineAnnealingLR, LinearWarmup, Scheduler, StepLR, type CosineAnnealingLROptions, type LinearWarmupOptions, type SchedulerState, type StepLROptions,
} from './optim/schedulers.js';
