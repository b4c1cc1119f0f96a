// model.summary(inputShape): a table of each layer's output shape and parameter count, from one forward
// pass on zeros in evaluation mode with the layers run one by one (so every output exists); the model's
// mode, buffers and fusion settings are left as they were.
import { checkShape, formatShape, Tensor } from '../tensor.js';
import { fail } from '../errors.js';
import { outputWatcher, type Module } from './module.js';

/** Containers that fuse layers (Sequential) have a fusion switch; summary turns it off while it runs. */
type Fusing = Module & { fusion: boolean };
const fuses = (m: Module): m is Fusing => typeof (m as unknown as { fusion?: unknown }).fusion === 'boolean';

function thousands(n: number): string {
  return n.toLocaleString('en-US');
}

function parameterCount(m: Module): number {
  return m.parameters().reduce((sum, p) => sum + p.size, 0);
}

/** The shape each module produced, leaves as they ran and containers as their last descendant's. */
function outputShapes(model: Module, input: Tensor): { shapes: Map<Module, readonly number[]>; output: readonly number[] } {
  const shapes = new Map<Module, readonly number[]>();
  const sequentials = model.namedModules().map(([, m]) => m).filter(fuses);
  const saved = { training: model.namedModules().map(([, m]) => [m, m.training] as const), fusion: sequentials.map((s) => [s, s.fusion] as const) };
  outputWatcher.current = (m, y) => shapes.set(m, y.shape);
  try {
    model.eval(); // running statistics: the forward changes no buffer
    for (const s of sequentials) s.fusion = false;
    const out = model.forward(input);
    shapes.set(model, out.shape);
    return { shapes, output: out.shape };
  } finally {
    outputWatcher.current = null;
    for (const [m, training] of saved.training) m.training = training;
    for (const [s, fusion] of saved.fusion) s.fusion = fusion;
    model.resetState();
  }
}

/** Containers that ran through their children take the shape of the last child that ran. */
function containerShape(m: Module, shapes: Map<Module, readonly number[]>): readonly number[] | undefined {
  const own = shapes.get(m);
  if (own) return own;
  const children = m.children();
  for (let i = children.length - 1; i >= 0; i--) {
    const s = containerShape(children[i]!, shapes);
    if (s) return s;
  }
  return undefined;
}

export function summarise(model: Module, inputShape: unknown): string {
  const who = `${model.constructor.name}.summary`;
  const shape = checkShape(`${who}: inputShape`, inputShape);
  const dtype = model.parameters()[0]?.dtype ?? 'float32';
  const device = model.parameters()[0]?.device ?? 'cpu';
  const input = Tensor.zeros(shape, dtype, device);
  let result: ReturnType<typeof outputShapes>;
  try {
    result = outputShapes(model, input);
  } catch (error) {
    return fail(`${who}: the model cannot run on an input of shape ${formatShape(shape)}: ${(error as Error).message.replace(/^ikun: /, '')}`);
  } finally {
    input.dispose();
  }
  const rows: Array<[string, string, string]> = [];
  for (const [name, m] of model.namedModules()) {
    if (m === model) continue;
    const depth = name.split('.').length - 1;
    const out = containerShape(m, result.shapes);
    rows.push([`${'  '.repeat(depth)}${name.split('.').pop()} (${m.constructor.name})`, out ? formatShape(out) : '-', thousands(parameterCount(m))]);
  }
  const header: [string, string, string] = ['Layer (type)', 'Output shape', 'Param #'];
  const widths = [0, 1, 2].map((i) => Math.max(header[i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: [string, string, string]): string => `${r[0].padEnd(widths[0]!)}  ${r[1].padEnd(widths[1]!)}  ${r[2].padStart(widths[2]!)}`;
  const rule = '='.repeat(widths[0]! + widths[1]! + widths[2]! + 4);
  const bufferCount = model.namedBuffers().reduce((sum, [, b]) => sum + b.size, 0);
  return [
    rule, line(header), rule, ...rows.map(line), rule,
    `Input shape: ${formatShape(shape)} (${dtype})`,
    `Output shape: ${formatShape(result.output)}`,
    `Total params: ${thousands(parameterCount(model))} (all trainable)`,
    `Buffers: ${thousands(bufferCount)} values (BatchNorm running statistics and counters)`,
    rule,
  ].join('\n');
}
