// IDX files (raw or gzip), the format of MNIST and Fashion-MNIST.
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { describe, fail } from '../errors.js';

/** An IDX array of unsigned bytes: its dimensions and its data in row-major order. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const IDX_TYPES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Parses an IDX file held in memory (gzip-compressed or raw; gzip is detected by its magic 0x1f 0x8b).
 * Only the unsigned-byte type (0x08) is supported. `name` is used in error messages.
 */
export function parseIdx(buffer: Uint8Array, name = 'IDX buffer'): IdxArray {
  if (!(buffer instanceof Uint8Array)) fail(`parseIdx: buffer must be a Uint8Array, got ${describe(buffer)}`);
  let bytes = buffer;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      fail(`${name}: corrupt gzip data (${(err as Error).message})`);
    }
  }
  if (bytes.length < 4) fail(`${name}: not an IDX file: ${bytes.length} bytes, shorter than the 4-byte header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), hex).join(' ');
    fail(`${name}: not an IDX file: magic number ${magic}, expected 0x00 0x00 <type> <ndim>`);
  }
  const type = bytes[2];
  if (type !== 0x08) {
    const known = IDX_TYPES[type] ? ` (${IDX_TYPES[type]})` : '';
    fail(`${name}: unsupported IDX data type ${hex(type)}${known}; only 0x08 (unsigned byte) is supported`);
  }
  const ndim = bytes[3];
  if (ndim === 0) fail(`${name}: IDX header has 0 dimensions`);
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes)
    fail(`${name}: truncated IDX header: ${ndim} dimensions need ${headerBytes} bytes, the file has ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let expected = 1;
  for (let d = 0; d < ndim; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    expected *= size;
  }
  if (expected > 2 ** 31) fail(`${name}: IDX dimensions [${dims.join(', ')}] describe ${expected} bytes, too large`);
  const actual = bytes.length - headerBytes;
  if (actual !== expected) {
    const what = actual < expected ? 'truncated' : 'too long';
    fail(
      `${name}: ${what}: dimensions [${dims.join(', ')}] need ${expected} data bytes, the file has ${actual}` +
        ` (after the ${headerBytes}-byte header)`,
    );
  }
  // A plain Uint8Array view (not a Buffer), sharing the decoded bytes.
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, expected) };
}

/** Reads and parses an IDX file (gzip-compressed or raw). */
export function readIdx(path: string): IdxArray {
  if (typeof path !== 'string' || path === '') fail(`readIdx: path must be a non-empty string, got ${describe(path)}`);
  let buffer: Buffer;
  try {
    buffer = readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    fail(`cannot read IDX file ${path}: ${e.code ?? e.message}`);
  }
  return parseIdx(buffer, path);
}
