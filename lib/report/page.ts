// The shell of ikun's HTML reports: one file that opens offline. Vega, Vega-Lite and vega-embed are
// inlined from their npm packages' browser builds (no network, no CDN), the chart specs and tables are
// embedded as JSON, and the page records how many charts drew (data-charts-drawn on <body>) and any
// failure, so a headless browser or a person can tell a broken page from an empty one.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fail } from '../errors.js';

const requireHere = createRequire(import.meta.url);

/** The browser (UMD) build of a package, found next to its resolved entry point. */
function browserBuild(pkg: string, file: string): string {
  let entry: string;
  try {
    entry = requireHere.resolve(pkg);
  } catch (error) {
    return fail(`the report needs the npm package '${pkg}' (${(error as Error).message.split('\n')[0]}); reinstall ikun's dependencies with npm install`);
  }
  const path = join(dirname(entry), file);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    return fail(`cannot read ${path} for the report: ${(error as Error).message}; reinstall '${pkg}' with npm install`);
  }
}

let libraries: string | null = null;
function inlinedLibraries(): string {
  // A script's text ends at the first '</script'; none is expected in minified code, but a literal one would
  // cut the page, so escape it (the same string inside a JS literal).
  libraries ??= [browserBuild('vega', 'vega.min.js'), browserBuild('vega-lite', 'vega-lite.min.js'), browserBuild('vega-embed', 'vega-embed.min.js')]
    .map((code) => `<script>${code.replace(/<\/script/gi, '<\\/script')}</script>`).join('\n');
  return libraries;
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON safe inside <script> (no '<' that could close it). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

export interface ReportChart {
  id: string;
  title: string;
  /** What the chart shows and how to read it. */
  caption: string;
  spec: Record<string, unknown>;
}

export interface ReportSection {
  title: string;
  /** Trusted HTML made by the report builders (tables, notes), every value escaped. */
  html?: string;
  charts?: ReportChart[];
}

const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; } th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
.chart { margin: 1rem 0 1.6rem; } .caption { color: #555; font-size: .85rem; max-width: 900px; }
.meta { color: #555; font-size: .9rem; } .warn { color: #9a3b00; } .error { color: #b00020; font-weight: bold; }
code { background: #f5f5f5; padding: 0 .2rem; }`;

/** A complete HTML page: title, a line of context, then the sections in order. */
export function reportPage(title: string, meta: string, sections: readonly ReportSection[]): string {
  const charts = sections.flatMap((s) => s.charts ?? []);
  const ids = new Set<string>();
  for (const c of charts) {
    if (ids.has(c.id)) fail(`report: two charts have the id '${c.id}'`);
    ids.add(c.id);
  }
  const body = sections.map((s) => [
    `<section><h2>${escapeHtml(s.title)}</h2>`,
    s.html ?? '',
    ...(s.charts ?? []).map((c) => `<div class="chart"><h3>${escapeHtml(c.title)}</h3><div id="${escapeHtml(c.id)}"></div><p class="caption">${escapeHtml(c.caption)}</p></div>`),
    '</section>',
  ].join('\n')).join('\n');
  const specs = Object.fromEntries(charts.map((c) => [c.id, c.spec]));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
${inlinedLibraries()}
</head>
<body data-charts="${charts.length}" data-charts-drawn="0">
<h1>${escapeHtml(title)}</h1>
<p class="meta">${escapeHtml(meta)}</p>
<div id="report-errors"></div>
${body}
<script>
(function () {
  var specs = ${scriptJson(specs)};
  var drawn = 0;
  Object.keys(specs).forEach(function (id) {
    vegaEmbed('#' + id, specs[id], { actions: false, renderer: 'svg' }).then(function () {
      drawn += 1;
      document.body.setAttribute('data-charts-drawn', String(drawn));
    }).catch(function (error) {
      var p = document.createElement('p');
      p.className = 'error';
      p.textContent = 'chart ' + id + ' failed: ' + error;
      document.getElementById('report-errors').appendChild(p);
      console.error('chart ' + id + ' failed:', error);
    });
  });
})();
</script>
</body>
</html>
`;
}
