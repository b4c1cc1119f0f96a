// Printing tensors the way PyTorch does: one number format for the whole tensor (integers as '1.',
// fixed with 4 decimals, or scientific when magnitudes span more than 1000x or leave [1e-4, 1e8]),
// right-aligned columns, rows wrapped at 80 characters, and tensors over 1000 elements shortened to
// their first and last 3 entries per dimension with '...'. Then shape, dtype and device.
import type { Tensor } from './tensor.js';
import { formatShape } from './tensor.js';

const PRECISION = 4;
const THRESHOLD = 1000;
const EDGE_ITEMS = 3;
const LINE_WIDTH = 80;

type NumberFormat = (v: number) => string;

/** Python's '{:.4e}': the exponent has a sign and at least two digits. */
function scientific(v: number): string {
  if (!Number.isFinite(v)) return nonFinite(v);
  const [mantissa, exponent] = v.toExponential(PRECISION).split('e') as [string, string];
  const sign = exponent.startsWith('-') ? '-' : '+';
  return `${mantissa}e${sign}${exponent.replace(/^[-+]/, '').padStart(2, '0')}`;
}

function nonFinite(v: number): string {
  return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
}

function fixed(v: number, digits: number): string {
  if (!Number.isFinite(v)) return nonFinite(v);
  return Object.is(v, -0) ? `-${v.toFixed(digits)}` : v.toFixed(digits); // Python prints the sign of -0
}

/** The format shared by every printed value, chosen from the values that will be shown. */
function chooseFormat(values: number[], isFloat: boolean): { format: NumberFormat; width: number } {
  if (!isFloat) {
    const width = Math.max(1, ...values.map((v) => String(v).length));
    return { format: (v) => String(v), width };
  }
  const finite = values.filter((v) => Number.isFinite(v) && v !== 0);
  let format: NumberFormat;
  if (finite.length === 0) format = (v) => (Number.isFinite(v) ? `${fixed(v, 0)}.` : nonFinite(v));
  else {
    const magnitudes = finite.map(Math.abs);
    const min = Math.min(...magnitudes), max = Math.max(...magnitudes);
    const integral = finite.every((v) => Number.isInteger(v));
    const wide = max / min > 1000 || max > 1e8;
    if (integral) format = wide ? scientific : (v) => (Number.isFinite(v) ? `${fixed(v, 0)}.` : nonFinite(v));
    else format = wide || min < 1e-4 ? scientific : (v) => fixed(v, PRECISION);
  }
  const width = Math.max(1, ...values.map((v) => format(v).length));
  return { format, width };
}

/** Indices shown along a dimension of size n: all, or the first and last EDGE_ITEMS with a gap (-1). */
function shownIndices(n: number, summarise: boolean): number[] {
  if (!summarise || n <= 2 * EDGE_ITEMS) return Array.from({ length: n }, (_, i) => i);
  return [...Array.from({ length: EDGE_ITEMS }, (_, i) => i), -1, ...Array.from({ length: EDGE_ITEMS }, (_, i) => n - EDGE_ITEMS + i)];
}

/** Every value that will be printed (the format depends on these only, as in PyTorch). */
function shownValues(values: ArrayLike<number>, shape: readonly number[], summarise: boolean): number[] {
  const out: number[] = [];
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const walk = (depth: number, offset: number): void => {
    if (depth === shape.length) {
      out.push(values[offset]!);
      return;
    }
    for (const i of shownIndices(shape[depth]!, summarise)) if (i >= 0) walk(depth + 1, offset + i * strides[depth]!);
  };
  walk(0, 0);
  return out;
}

function render(values: ArrayLike<number>, shape: readonly number[], summarise: boolean, cell: (v: number) => string, indent: number): string {
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const block = (depth: number, offset: number, at: number): string => {
    const indices = shownIndices(shape[depth]!, summarise);
    if (depth === shape.length - 1) {
      const items = indices.map((i) => (i < 0 ? ' ...' : cell(values[offset + i]!)));
      // elements per line from the widest cell plus ', ' (the gap marker counts as one)
      const perLine = Math.max(1, Math.floor((LINE_WIDTH - at) / ((items[0]?.length ?? 1) + 2)));
      const lines: string[] = [];
      for (let i = 0; i < items.length; i += perLine) lines.push(items.slice(i, i + perLine).join(', '));
      return `[${lines.join(`,\n${' '.repeat(at + 1)}`)}]`;
    }
    const parts = indices.map((i) => (i < 0 ? '...' : block(depth + 1, offset + i * strides[depth]!, at + 1)));
    return `[${parts.join(`,${'\n'.repeat(shape.length - depth - 1)}${' '.repeat(at + 1)}`)}]`;
  };
  return block(0, 0, indent);
}

/** tensor([...], shape=[...], dtype=..., device=...) */
export function formatTensor(t: Tensor): string {
  const prefix = 'tensor(';
  const values = t.toArray();
  const summarise = t.size > THRESHOLD;
  const { format, width } = chooseFormat(shownValues(values, t.shape, summarise), t.dtype !== 'int32');
  const cell = (v: number): string => format(v).padStart(width);
  let text = prefix;
  if (t.rank === 0) text += format(values[0]!);
  else if (t.size === 0) text += '[]';
  else text += render(values, t.shape, summarise, cell, prefix.length);
  // Each suffix goes on a new line when it would pass the line width, as PyTorch's suffixes do.
  let lineLength = text.length - text.lastIndexOf('\n') - 1;
  for (const suffix of [`shape=${formatShape(t.shape)}`, `dtype=${t.dtype}`, `device=${t.device}`]) {
    if (lineLength + suffix.length + 2 > LINE_WIDTH) {
      text += `,\n${' '.repeat(prefix.length)}${suffix}`;
      lineLength = prefix.length + suffix.length;
    } else {
      text += `, ${suffix}`;
      lineLength += suffix.length + 2;
    }
  }
  return `${text})`;
}
