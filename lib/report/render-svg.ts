// A report chart as SVG in Node, without a browser: Vega-Lite compiles the spec to Vega and a headless
// Vega view renders it. For static figures (papers, READMEs) and to prove a spec draws.
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';
import { fail } from '../errors.js';

export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  // Loaded on first use: the libraries are large and only this function needs them in Node.
  const vega: typeof Vega = await import('vega');
  const vegaLite: typeof VegaLite = await import('vega-lite');
  let compiled: Vega.Spec;
  try {
    compiled = vegaLite.compile(spec as unknown as VegaLite.TopLevelSpec).spec;
  } catch (error) {
    return fail(`the chart spec does not compile with Vega-Lite: ${(error as Error).message}`);
  }
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The chart specs embedded in one of ikun's report pages, by chart id. */
export function reportSpecs(html: string): Record<string, Record<string, unknown>> {
  const match = /var specs = (\{.*?\});\n/s.exec(html);
  if (!match) fail('this page holds no ikun chart specs (not an ikun report.html)');
  return JSON.parse(match[1]!) as Record<string, Record<string, unknown>>;
}
