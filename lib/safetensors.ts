// Safetensors reader and writer (https://github.com/huggingface/safetensors), pure TypeScript.
//
// Layout: 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON header, then the data buffer.
// The header maps tensor names to { dtype, shape, data_offsets: [begin, end] } (offsets relative to the start
// of the data buffer, end exclusive) plus an optional "__metadata__" object of string values. Tensor data is
// little-endian, contiguous, row-major. The file is pure data: it is only ever parsed as JSON, never evaluated.

import { readFileSync } from 'node:fs';
import { fail, describe } from './errors.js';
import { writeBytesAtomic } from './files.js';

export type SafeDType = 'F32' | 'F64' | 'I64' | 'I32';

export type SafeTensorData = Float32Array | Float64Array | BigInt64Array | Int32Array;

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: SafeTensorData;
}

export interface SafetensorsContents {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

export type SafeTensorEntries = Array<[string, SafeTensor]> | Map<string, SafeTensor>;

/** Header size limit, as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

interface DTypeInfo {
  size: number;
  array: string;
  make: (buffer: ArrayBuffer) => SafeTensorData;
  is: (data: unknown) => boolean;
}

const DTYPES: Record<SafeDType, DTypeInfo> = {
  F32: { size: 4, array: 'Float32Array', make: (b) => new Float32Array(b), is: (d) => d instanceof Float32Array },
  F64: { size: 8, array: 'Float64Array', make: (b) => new Float64Array(b), is: (d) => d instanceof Float64Array },
  I64: { size: 8, array: 'BigInt64Array', make: (b) => new BigInt64Array(b), is: (d) => d instanceof BigInt64Array },
  I32: { size: 4, array: 'Int32Array', make: (b) => new Int32Array(b), is: (d) => d instanceof Int32Array },
};

const SUPPORTED = Object.keys(DTYPES) as SafeDType[];

function isSafeDType(value: unknown): value is SafeDType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, value);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses each `size`-byte element in place (only used on big-endian hosts). */
function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/** Element count of `shape`, or undefined when it overflows the exactly representable integers. */
function elementCount(shape: readonly number[]): number | undefined {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
}

function entriesOf(tensors: SafeTensorEntries, where: string): Array<[string, SafeTensor]> {
  if (tensors instanceof Map) return [...tensors.entries()];
  if (Array.isArray(tensors)) return tensors;
  fail(`${where}: tensors must be a Map or an array of [name, tensor] pairs, got ${describe(tensors)}`);
}

function checkMetadataObject(metadata: unknown, where: string): Array<[string, string]> {
  if (metadata === undefined) return [];
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))
    fail(`${where}: metadata must be an object of string values, got ${describe(metadata)}`);
  const entries = Object.entries(metadata as Record<string, unknown>);
  for (const [key, value] of entries) {
    if (typeof value !== 'string')
      fail(`${where}: metadata value for key ${JSON.stringify(key)} must be a string, got ${describe(value)}`);
  }
  return entries as Array<[string, string]>;
}

/**
 * Serialises tensors (written in the order given) and optional string metadata into safetensors bytes.
 * The header is padded with spaces so the data buffer starts at an 8-byte-aligned file offset.
 */
export function serializeSafetensors(tensors: SafeTensorEntries, metadata?: Record<string, string>): Buffer {
  const where = 'serializeSafetensors';
  const entries = entriesOf(tensors, where);
  const meta = checkMetadataObject(metadata, where);

  const seen = new Set<string>();
  const parts: string[] = [];
  const payloads: Uint8Array[] = [];
  if (meta.length > 0) {
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${meta.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  let offset = 0;
  entries.forEach((entry, index) => {
    if (!Array.isArray(entry) || entry.length !== 2) fail(`${where}: entry ${index} must be a [name, tensor] pair, got ${describe(entry)}`);
    const [name, tensor] = entry;
    if (typeof name !== 'string' || name.length === 0) fail(`${where}: entry ${index} has an empty or non-string tensor name ${describe(name)}`);
    const label = `${where}: tensor ${JSON.stringify(name)}`;
    if (name === METADATA_KEY) fail(`${label}: the name ${JSON.stringify(METADATA_KEY)} is reserved for metadata`);
    if (seen.has(name)) fail(`${label}: duplicate tensor name`);
    seen.add(name);
    if (tensor === null || typeof tensor !== 'object') fail(`${label}: expected { dtype, shape, data }, got ${describe(tensor)}`);
    const { dtype, shape, data } = tensor;
    if (!isSafeDType(dtype)) fail(`${label}: unsupported dtype ${describe(dtype)} (supported: ${SUPPORTED.join(', ')})`);
    const info = DTYPES[dtype];
    if (!isShape(shape)) fail(`${label}: shape must be an array of non-negative integers, got ${describe(shape)}`);
    if (!info.is(data)) fail(`${label}: dtype ${dtype} needs data in a ${info.array}, got ${describe(data)}`);
    const count = elementCount(shape);
    if (count === undefined) fail(`${label}: shape [${shape.join(', ')}] has too many elements`);
    if (data.length !== count)
      fail(`${label}: shape [${shape.join(', ')}] needs ${count} elements but data has ${data.length}`);
    const nbytes = count * info.size;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + nbytes}]}`);
    payloads.push(new Uint8Array(data.buffer, data.byteOffset, nbytes));
    offset += nbytes;
  });

  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padding = (8 - (json.length % 8)) % 8;
  const headerLength = json.length + padding;
  const out = Buffer.alloc(8 + headerLength + offset);
  out.writeBigUInt64LE(BigInt(headerLength), 0);
  json.copy(out, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  entries.forEach(([, tensor], i) => {
    const bytes = payloads[i]!;
    out.set(bytes, at);
    if (!LITTLE_ENDIAN) swapBytes(out.subarray(at, at + bytes.length), DTYPES[tensor.dtype].size);
    at += bytes.length;
  });
  return out;
}

/**
 * Records the keys of every JSON object in `text` (already known to be valid JSON) and reports the first
 * key that occurs twice in the same object, which JSON.parse would otherwise silently collapse.
 */
function findDuplicateKey(text: string): string | undefined {
  const stack: Array<Set<string> | null> = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '{') {
      stack.push(new Set());
      i++;
    } else if (c === '[') {
      stack.push(null);
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const raw = text.slice(i, j + 1);
      i = j + 1;
      while (i < text.length && /\s/.test(text[i]!)) i++;
      const keys = stack[stack.length - 1];
      if (text[i] === ':' && keys) {
        const key = JSON.parse(raw) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
    } else {
      i++;
    }
  }
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses safetensors bytes. Every tensor is copied into its own, properly aligned typed array.
 * `source` names the file in error messages.
 */
export function parseSafetensors(buffer: Buffer | Uint8Array, source = '<buffer>'): SafetensorsContents {
  const where = `safetensors file ${JSON.stringify(source)}`;
  if (!(buffer instanceof Uint8Array)) fail(`${where}: expected a Buffer or Uint8Array, got ${describe(buffer)}`);
  if (buffer.length < 8) fail(`${where}: file is ${buffer.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const rawLength = view.getBigUint64(0, true);
  if (rawLength > BigInt(MAX_HEADER_BYTES))
    fail(`${where}: header length ${rawLength} is absurd (limit ${MAX_HEADER_BYTES} bytes); the file is corrupt or not safetensors`);
  const headerLength = Number(rawLength);
  if (8 + headerLength > buffer.length)
    fail(`${where}: header length ${headerLength} is larger than the ${buffer.length - 8} bytes after the length field; the file is truncated or corrupt`);

  let text: string;
  try {
    text = utf8.decode(buffer.subarray(8, 8 + headerLength));
  } catch {
    fail(`${where}: header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`${where}: header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    fail(`${where}: header must be a JSON object, got ${describe(header)}`);
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) fail(`${where}: header has duplicate key ${JSON.stringify(duplicate)}`);

  const dataStart = 8 + headerLength;
  const dataLength = buffer.length - dataStart;
  const metadata: Record<string, string> = {};
  const infos: Array<{ name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }> = [];

  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        fail(`${where}: "__metadata__" must be an object of string values, got ${describe(value)}`);
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`${where}: "__metadata__" value for key ${JSON.stringify(key)} must be a string, got ${describe(v)}`);
        Object.defineProperty(metadata, key, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    if (name.length === 0) fail(`${where}: header has a tensor with an empty name`);
    const label = `${where}: tensor ${JSON.stringify(name)}`;
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      fail(`${label}: expected { dtype, shape, data_offsets }, got ${describe(value)}`);
    const entry = value as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') fail(`${label}: unknown field ${JSON.stringify(key)}`);
    }
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isSafeDType(dtype)) fail(`${label}: unsupported dtype ${describe(dtype)} (supported: ${SUPPORTED.join(', ')})`);
    if (!isShape(shape)) fail(`${label}: shape must be an array of non-negative integers, got ${describe(shape)}`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    )
      fail(`${label}: data_offsets must be [begin, end] non-negative integers, got ${describe(offsets)}`);
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`${label}: data_offsets [${begin}, ${end}] have begin > end`);
    const count = elementCount(shape);
    const expected = count === undefined ? undefined : count * DTYPES[dtype].size;
    if (expected === undefined || end - begin !== expected)
      fail(
        `${label}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} shape [${shape.join(', ')}] needs ${expected ?? 'too many'} bytes`,
      );
    if (end > dataLength)
      fail(`${label}: data_offsets [${begin}, ${end}] lie outside the ${dataLength}-byte data buffer; the file is truncated or corrupt`);
    infos.push({ name, dtype, shape: [...shape], begin, end });
  }

  // The tensors must tile the data buffer exactly: no gaps, no overlap, nothing left over.
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: string | undefined;
  for (const info of sorted) {
    if (info.begin < covered)
      fail(`${where}: tensor ${JSON.stringify(info.name)} at [${info.begin}, ${info.end}] overlaps tensor ${JSON.stringify(previous)} (which ends at ${covered})`);
    if (info.begin > covered)
      fail(`${where}: gap in the data buffer: bytes [${covered}, ${info.begin}) belong to no tensor (before ${JSON.stringify(info.name)})`);
    covered = info.end;
    previous = info.name;
  }
  if (covered !== dataLength)
    fail(`${where}: gap in the data buffer: bytes [${covered}, ${dataLength}) at the end belong to no tensor`);

  const tensors = new Map<string, SafeTensor>();
  for (const { name, dtype, shape, begin, end } of infos) {
    const bytes = new Uint8Array(end - begin);
    bytes.set(buffer.subarray(dataStart + begin, dataStart + end));
    const info = DTYPES[dtype];
    if (!LITTLE_ENDIAN) swapBytes(bytes, info.size);
    tensors.set(name, { dtype, shape, data: info.make(bytes.buffer) });
  }
  return { tensors, metadata };
}

function ioError(message: string, cause: unknown): never {
  throw new Error(`ikun: ${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}

/** Reads and validates a safetensors file. */
export function readSafetensors(path: string): SafetensorsContents {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    ioError(`cannot read safetensors file ${JSON.stringify(path)}`, e);
  }
  return parseSafetensors(bytes, path);
}

/**
 * Writes a safetensors file atomically: the bytes go to a temporary file in the same folder, which is
 * fsynced and then renamed over `path`. On any failure the previous file is left untouched and the
 * temporary file is removed (the error, code WRITE_FAILED, names the file). An existing file's permission
 * bits are kept. `verify` reads the file back before the rename; `keepPreviousAs` keeps the file being
 * replaced there too.
 */
export function writeSafetensorsAtomic(path: string, tensors: SafeTensorEntries, metadata?: Record<string, string>,
  options: { verify?: boolean; keepPreviousAs?: string } = {}): void {
  if (typeof path !== 'string' || path.length === 0) fail(`writeSafetensorsAtomic: path must be a non-empty string, got ${describe(path)}`);
  const bytes = serializeSafetensors(tensors, metadata); // validation errors are thrown before any file is touched
  writeBytesAtomic(path, bytes, { ...options, what: 'safetensors file' });
}
