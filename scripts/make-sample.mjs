#!/usr/bin/env node
// Builds the bundled Fashion-MNIST sample in data/sample/: the first 4000 training and the first 1000 test
// images and labels of the real data set, in the four usual IDX file names, gzip-compressed.
// Deterministic: the same source files give byte-identical output (gzip level 9, no file name or time in
// the gzip header).
//
//   node scripts/make-sample.mjs [--from DIR] [--out DIR]
//
// --from defaults to /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist),
// --out to data/sample beside this script's package root.
import { gunzipSync, gzipSync, constants } from 'node:zlib';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
function option(flag, fallback) {
  const i = args.indexOf(flag);
  if (i < 0) return fallback;
  if (i + 1 >= args.length) throw new Error(`make-sample: ${flag} needs a folder`);
  return args[i + 1];
}
const from = option('--from', '/usr/share/datasets/fashion-mnist');
const out = option('--out', join(root, 'data', 'sample'));

const parts = [
  ['train-images-idx3-ubyte', 4000],
  ['train-labels-idx1-ubyte', 4000],
  ['t10k-images-idx3-ubyte', 1000],
  ['t10k-labels-idx1-ubyte', 1000],
];

function readSource(name) {
  for (const file of [join(from, `${name}.gz`), join(from, name)]) {
    if (!existsSync(file)) continue;
    const raw = readFileSync(file);
    return raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
  }
  throw new Error(`make-sample: ${name}(.gz) not found in ${from} (apt-get install dataset-fashion-mnist, or pass --from DIR)`);
}

mkdirSync(out, { recursive: true });
let total = 0;
for (const [name, count] of parts) {
  const src = readSource(name);
  if (src[0] !== 0 || src[1] !== 0 || src[2] !== 0x08) throw new Error(`make-sample: ${name} is not an unsigned-byte IDX file`);
  const ndim = src[3];
  const dims = [];
  for (let d = 0; d < ndim; d++) dims.push(src.readUInt32BE(4 + 4 * d));
  if (dims[0] < count) throw new Error(`make-sample: ${name} has ${dims[0]} items, need ${count}`);
  const header = 4 + 4 * ndim;
  const itemBytes = dims.slice(1).reduce((a, b) => a * b, 1);
  const result = Buffer.alloc(header + count * itemBytes);
  src.copy(result, 0, 0, header);
  result.writeUInt32BE(count, 4);
  src.copy(result, header, header, header + count * itemBytes);
  const gz = gzipSync(result, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(join(out, `${name}.gz`), gz);
  total += gz.length;
  console.log(`${name}.gz: [${[count, ...dims.slice(1)].join(', ')}], ${gz.length} bytes`);
}
console.log(`total ${total} bytes in ${out}`);
