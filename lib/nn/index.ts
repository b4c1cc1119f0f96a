export { Module } from './module.js';
export { Conv2d, Linear, BatchNorm2d, MaxPool2d, Flatten } from './layers.js';
export type { Conv2dOptions, LinearOptions, BatchNorm2dOptions, MaxPool2dOptions, FlattenOptions } from './layers.js';
export { IFNode, LIFNode } from './neuron.js';
export type { NeuronOptions, LIFNodeOptions } from './neuron.js';
export { Sequential } from './container.js';
export { RepeatOverTime, MeanOverTime } from './time.js';
export type { FactoryOptions } from './util.js';
export type { StateDict, LoadStateDictOptions, LoadStateDictResult } from './state-dict.js';
