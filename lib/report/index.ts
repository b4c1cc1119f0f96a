// ikun's HTML reports (Vega-Lite, inlined so they open offline) and their charts as SVG in Node.
export { writeRunReport, runReportHtml } from './run-report.js';
export { writeExperimentReport, experimentReportHtml } from './experiment-report.js';
export { renderSvg, reportSpecs } from './render-svg.js';
