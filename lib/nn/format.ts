// String(model): the module tree as PyTorch prints it, each module with its settings (extraRepr).
import type { Module } from './module.js';

/** 'Name(settings)' for a leaf, 'Name(\n  (child): ...\n)' for a module with children. */
export function formatModule(m: Module, children: ReadonlyMap<string, Module>): string {
  const head = `${m.constructor.name}(${m.extraRepr()}`;
  if (children.size === 0) return `${head})`;
  const lines = [...children].map(([name, child]) => `(${name}): ${String(child)}`.replace(/\n/g, '\n  '));
  return `${head}\n  ${lines.join('\n  ')}\n)`;
}

/** key=value pairs for extraRepr: strings and numbers as JS writes them, arrays as [a, b]. */
export function settings(values: Record<string, unknown>, leading: unknown[] = []): string {
  const show = (v: unknown): string => (Array.isArray(v) ? `[${v.map(show).join(', ')}]` : typeof v === 'string' ? `'${v}'` : String(v));
  return [...leading.map(show), ...Object.entries(values).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${show(v)}`)].join(', ');
}
