import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensorsAtomic,
  type SafeTensor,
} from '../lib/safetensors.js';

const SOURCE = 'corrupt.safetensors';

/** Builds a safetensors file from raw header text and data bytes (header length taken from the text unless given). */
function build(header: string, data: Uint8Array | number[] = [], headerLength?: bigint): Buffer {
  const json = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([len, json, Buffer.from(data)]);
}

function parseError(bytes: Uint8Array): string {
  try {
    parseSafetensors(bytes, SOURCE);
  } catch (e) {
    const message = (e as Error).message;
    expect(e).toBeInstanceOf(Error);
    expect(message.startsWith('ikun: ')).toBe(true);
    expect(message).toContain(SOURCE);
    return message;
  }
  throw new Error('expected parseSafetensors to throw');
}

const f32 = (name: string, shape: number[], values: number[]): [string, SafeTensor] => [
  name,
  { dtype: 'F32', shape, data: new Float32Array(values) },
];

describe('serializeSafetensors / parseSafetensors round trip', () => {
  it('round-trips F32, F64, I64, I32, a scalar and an empty tensor', () => {
    const input: Array<[string, SafeTensor]> = [
      ['layer.0.weight', { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2.5, 3, 0.1, -0, Infinity]) }],
      ['layer.0.bias', { dtype: 'F64', shape: [3], data: new Float64Array([Math.PI, -1e-300, NaN]) }],
      ['step', { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) }],
      ['counts', { dtype: 'I32', shape: [1, 2, 2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, 7]) }],
      ['scalar', { dtype: 'F64', shape: [], data: new Float64Array([42.5]) }],
      ['empty', { dtype: 'I32', shape: [0, 4], data: new Int32Array(0) }],
    ];
    const bytes = serializeSafetensors(input);
    const { tensors, metadata } = parseSafetensors(bytes, 'roundtrip');
    expect(metadata).toEqual({});
    expect([...tensors.keys()]).toEqual(input.map(([n]) => n));
    for (const [name, t] of input) {
      const got = tensors.get(name)!;
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect(got.data.constructor).toBe(t.data.constructor);
      expect(Array.from(got.data as ArrayLike<number | bigint>)).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
    // -0 survives bit-exactly
    expect(Object.is(tensors.get('layer.0.weight')!.data[4], -0)).toBe(true);
    // Writing in the order given: offsets increase in input order.
    const again = serializeSafetensors(tensors);
    expect(Buffer.compare(again, bytes)).toBe(0);
  });

  it('accepts a Map and a subarray view as input', () => {
    const backing = new Float32Array([9, 1, 2, 3, 9]);
    const map = new Map<string, SafeTensor>([['v', { dtype: 'F32', shape: [3], data: backing.subarray(1, 4) }]]);
    const { tensors } = parseSafetensors(serializeSafetensors(map));
    expect(Array.from(tensors.get('v')!.data as Float32Array)).toEqual([1, 2, 3]);
  });

  it('copies tensor data into aligned typed arrays even from an unaligned buffer', () => {
    const bytes = serializeSafetensors([
      ['a', { dtype: 'F64', shape: [2], data: new Float64Array([1.5, -2.5]) }],
      ['b', { dtype: 'I64', shape: [1], data: new BigInt64Array([123456789012345n]) }],
    ]);
    const backing = new Uint8Array(bytes.length + 3);
    backing.set(bytes, 3);
    const unaligned = backing.subarray(3);
    const { tensors } = parseSafetensors(unaligned);
    const a = tensors.get('a')!.data as Float64Array;
    expect(a.byteOffset % 8).toBe(0);
    expect(Array.from(a)).toEqual([1.5, -2.5]);
    expect(tensors.get('b')!.data[0]).toBe(123456789012345n);
    // The result does not alias the input.
    backing.fill(0);
    expect(Array.from(a)).toEqual([1.5, -2.5]);
  });

  it('round-trips metadata', () => {
    const metadata = { format: 'pt', epoch: '3', note: 'unicode ✓ "quoted" \\ back\nslash', '': 'empty key' };
    const { tensors, metadata: got } = parseSafetensors(serializeSafetensors([f32('w', [1], [1])], metadata));
    expect(got).toEqual(metadata);
    expect(tensors.size).toBe(1);
    // Metadata only, no tensors.
    const onlyMeta = parseSafetensors(serializeSafetensors([], { k: 'v' }));
    expect(onlyMeta.tensors.size).toBe(0);
    expect(onlyMeta.metadata).toEqual({ k: 'v' });
  });

  it('treats a "__proto__" metadata key as plain data', () => {
    const { metadata } = parseSafetensors(build('{"__metadata__":{"__proto__":"x","polluted":"no"}}'));
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(metadata, '__proto__')).toBe(true);
    expect(metadata['__proto__' as string]).toBe('x');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('pads the header with spaces so the data starts at an 8-byte-aligned offset', () => {
    for (let n = 1; n <= 16; n++) {
      const bytes = serializeSafetensors([f32('x'.repeat(n), [1], [n])]);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      expect((8 + headerLength) % 8).toBe(0);
      const header = bytes.subarray(8, 8 + headerLength).toString('utf8');
      expect(header.trimEnd().endsWith('}')).toBe(true);
      expect(header.length - header.trimEnd().length).toBeLessThan(8);
      expect(/^ *$/.test(header.slice(header.trimEnd().length))).toBe(true);
      expect(bytes.length).toBe(8 + headerLength + 4);
    }
  });

  it('matches the published format byte for byte', () => {
    // {"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 85 bytes;
    // 3 spaces of padding make the header 88 = 0x58 bytes so the data starts at offset 96.
    const header = '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   ';
    const expected = Buffer.concat([
      Buffer.from([0x58, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from(header, 'ascii'),
      Buffer.from([0x00, 0x00, 0x80, 0x3f]), // 1.0f little-endian
      Buffer.from([0x00, 0x00, 0x00, 0xc0]), // -2.0f little-endian
    ]);
    expect(expected.length).toBe(104);
    const bytes = serializeSafetensors([['w', { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) }]], {
      format: 'pt',
    });
    expect(bytes.toString('hex')).toBe(expected.toString('hex'));
    const parsed = parseSafetensors(expected);
    expect(parsed.metadata).toEqual({ format: 'pt' });
    expect(Array.from(parsed.tensors.get('w')!.data as Float32Array)).toEqual([1, -2]);
  });

  it('reads tensors stored in any order and with whitespace in the header', () => {
    const header = ' { "b" : {"shape":[1],"dtype":"I32","data_offsets":[4,8]},\n "a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]} } ';
    const { tensors } = parseSafetensors(build(header, [1, 0, 0, 0, 2, 0, 0, 0]));
    expect(tensors.get('a')!.data[0]).toBe(1);
    expect(tensors.get('b')!.data[0]).toBe(2);
  });
});

describe('parseSafetensors rejects corrupt files', () => {
  const ok = (offsets = '[0,8]', shape = '[2]', dtype = '"F32"') =>
    `{"t":{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}}`;
  const eight = new Array(8).fill(0);

  it('accepts the baseline used below', () => {
    expect(parseSafetensors(build(ok(), eight)).tensors.get('t')!.shape).toEqual([2]);
  });

  it('file shorter than 8 bytes', () => {
    expect(parseError(new Uint8Array(5))).toMatch(/5 bytes, too short/);
    expect(parseError(new Uint8Array(0))).toMatch(/too short/);
  });

  it('header length larger than the file', () => {
    expect(parseError(build(ok(), eight, 1000n))).toMatch(/header length 1000 is larger than/);
  });

  it('absurd header length', () => {
    expect(parseError(build(ok(), eight, 2n ** 63n))).toMatch(/header length \d+ is absurd/);
    expect(parseError(build(ok(), eight, 100_000_001n))).toMatch(/absurd/);
  });

  it('header not valid UTF-8', () => {
    const bytes = build('{"t":1}');
    bytes[10] = 0xff;
    expect(parseError(bytes)).toMatch(/not valid UTF-8/);
  });

  it('header not valid JSON', () => {
    expect(parseError(build('{"t":'))).toMatch(/not valid JSON/);
    expect(parseError(build(''))).toMatch(/not valid JSON/);
    expect(parseError(build('\ufeff{}'))).toMatch(/not valid JSON/);
  });

  it('header not an object', () => {
    expect(parseError(build('[]'))).toMatch(/header must be a JSON object/);
    expect(parseError(build('null'))).toMatch(/header must be a JSON object/);
    expect(parseError(build('"x"'))).toMatch(/header must be a JSON object/);
  });

  it('tensor entry not an object or with unknown fields', () => {
    expect(parseError(build('{"t":[1]}'))).toMatch(/tensor "t": expected \{ dtype, shape, data_offsets \}/);
    expect(parseError(build('{"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"eval":"x"}}'))).toMatch(
      /unknown field "eval"/,
    );
  });

  it('unknown dtype', () => {
    expect(parseError(build(ok('[0,8]', '[2]', '"F16"'), eight))).toMatch(/tensor "t": unsupported dtype "F16"/);
    expect(parseError(build(ok('[0,8]', '[2]', '"toString"'), eight))).toMatch(/unsupported dtype "toString"/);
    expect(parseError(build(ok('[0,8]', '[2]', '4'), eight))).toMatch(/unsupported dtype 4/);
  });

  it('shape not an array of non-negative integers', () => {
    for (const shape of ['2', '[-1]', '[1.5]', '["2"]', 'null', '[1e400]']) {
      expect(parseError(build(ok('[0,8]', shape), eight))).toMatch(/shape must be an array of non-negative integers/);
    }
  });

  it('data_offsets malformed or begin > end', () => {
    for (const offsets of ['[0]', '[0,8,8]', '"0,8"', '[0.5,8]', '[-8,0]', '[0,"8"]']) {
      expect(parseError(build(ok(offsets), eight))).toMatch(/data_offsets must be \[begin, end\]/);
    }
    expect(parseError(build(ok('[8,0]'), eight))).toMatch(/begin > end/);
  });

  it('byte length does not match shape and dtype', () => {
    expect(parseError(build(ok('[0,8]', '[3]'), eight))).toMatch(/span 8 bytes but F32 shape \[3\] needs 12 bytes/);
    expect(parseError(build(ok('[0,8]', '[]'), eight))).toMatch(/span 8 bytes but F32 shape \[\] needs 4 bytes/);
    expect(parseError(build(ok('[0,8]', '[9007199254740991,2]'), eight))).toMatch(/needs too many bytes/);
  });

  it('offsets outside the data buffer', () => {
    expect(parseError(build(ok('[0,8]'), [0, 0, 0, 0]))).toMatch(/lie outside the 4-byte data buffer/);
    expect(parseError(build(ok('[8,16]'), eight))).toMatch(/outside/);
  });

  it('overlapping tensors', () => {
    const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    expect(parseError(build(header, new Array(12).fill(0)))).toMatch(/tensor "b" at \[4, 12\] overlaps tensor "a"/);
    const same = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}';
    expect(parseError(build(same, [0, 0, 0, 0]))).toMatch(/overlaps/);
  });

  it('gaps in the data buffer', () => {
    const header = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}';
    expect(parseError(build(header, new Array(12).fill(0)))).toMatch(/gap in the data buffer: bytes \[4, 8\)/);
    expect(parseError(build(ok('[4,12]'), new Array(12).fill(0)))).toMatch(/gap in the data buffer: bytes \[0, 4\)/);
    expect(parseError(build(ok(), new Array(12).fill(0)))).toMatch(/bytes \[8, 12\) at the end belong to no tensor/);
    expect(parseError(build('{}', [1]))).toMatch(/bytes \[0, 1\) at the end/);
  });

  it('__metadata__ not an object of strings', () => {
    expect(parseError(build('{"__metadata__":{"epoch":3}}'))).toMatch(/"__metadata__" value for key "epoch" must be a string, got 3/);
    expect(parseError(build('{"__metadata__":["a"]}'))).toMatch(/"__metadata__" must be an object of string values/);
    expect(parseError(build('{"__metadata__":"a"}'))).toMatch(/"__metadata__" must be an object/);
  });

  it('duplicate names', () => {
    const entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    expect(parseError(build(`{"t":${entry},"t":${entry}}`, [0, 0, 0, 0]))).toMatch(/duplicate key "t"/);
    // Escaped spellings of the same name are the same name.
    expect(parseError(build(`{"t":${entry},"\\u0074":${entry}}`, [0, 0, 0, 0]))).toMatch(/duplicate key "t"/);
    expect(parseError(build('{"__metadata__":{"k":"a","k":"b"}}'))).toMatch(/duplicate key "k"/);
    // Equal strings in different objects or as values are fine.
    expect(parseSafetensors(build('{"__metadata__":{"k":"k","t":"x"},"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}')).metadata).toEqual({
      k: 'k',
      t: 'x',
    });
  });

  it('empty names', () => {
    expect(parseError(build('{"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'))).toMatch(/tensor with an empty name/);
  });

  it('default source name appears when none is given', () => {
    expect(() => parseSafetensors(new Uint8Array(3))).toThrow(/^ikun: safetensors file "<buffer>": /);
  });
});

describe('serializeSafetensors validates its input', () => {
  const bad = (tensors: Array<[string, SafeTensor]>, metadata?: Record<string, string>) => () =>
    serializeSafetensors(tensors, metadata);

  it('data length must match the shape', () => {
    expect(bad([f32('w', [2, 2], [1, 2, 3])])).toThrow(/^ikun: serializeSafetensors: tensor "w": shape \[2, 2\] needs 4 elements but data has 3/);
    expect(bad([f32('s', [], [1, 2])])).toThrow(/shape \[\] needs 1 elements but data has 2/);
  });

  it('dtype must match the typed array kind', () => {
    expect(bad([['w', { dtype: 'F64', shape: [1], data: new Float32Array(1) }]])).toThrow(
      /tensor "w": dtype F64 needs data in a Float64Array, got Float32Array/,
    );
    expect(bad([['w', { dtype: 'I64', shape: [1], data: new Int32Array(1) }]])).toThrow(/needs data in a BigInt64Array/);
    expect(bad([['w', { dtype: 'I32', shape: [1], data: [1] as unknown as Int32Array }]])).toThrow(/needs data in a Int32Array, got \[1\]/);
    expect(bad([['w', { dtype: 'F16' as 'F32', shape: [1], data: new Float32Array(1) }]])).toThrow(/unsupported dtype "F16"/);
  });

  it('shape must be non-negative integers', () => {
    expect(bad([f32('w', [-1], [])])).toThrow(/shape must be an array of non-negative integers/);
    expect(bad([f32('w', [0.5], [])])).toThrow(/shape must be an array of non-negative integers/);
  });

  it('names must be non-empty, unique and not reserved', () => {
    expect(bad([f32('', [1], [1])])).toThrow(/empty or non-string tensor name/);
    expect(bad([f32('w', [1], [1]), f32('w', [1], [2])])).toThrow(/tensor "w": duplicate tensor name/);
    expect(bad([f32('__metadata__', [1], [1])])).toThrow(/reserved for metadata/);
  });

  it('metadata values must be strings', () => {
    expect(bad([], { epoch: 3 as unknown as string })).toThrow(/metadata value for key "epoch" must be a string, got 3/);
    expect(bad([], ['x'] as unknown as Record<string, string>)).toThrow(/metadata must be an object of string values/);
  });
});

describe('writeSafetensorsAtomic / readSafetensors', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ikun-safetensors-'));
  });
  afterEach(() => {
    fs.chmodSync(dir, 0o755);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const listing = () => fs.readdirSync(dir).sort();

  it('writes a new file and reads it back', () => {
    const file = path.join(dir, 'model.safetensors');
    writeSafetensorsAtomic(file, [f32('w', [2], [1, 2])], { step: '1' });
    expect(listing()).toEqual(['model.safetensors']);
    const { tensors, metadata } = readSafetensors(file);
    expect(Array.from(tensors.get('w')!.data as Float32Array)).toEqual([1, 2]);
    expect(metadata).toEqual({ step: '1' });
    expect(Buffer.compare(fs.readFileSync(file), serializeSafetensors([f32('w', [2], [1, 2])], { step: '1' }))).toBe(0);
  });

  it('replaces an existing file and keeps its permission bits', () => {
    const file = path.join(dir, 'model.safetensors');
    writeSafetensorsAtomic(file, [f32('w', [2], [1, 2])]);
    fs.chmodSync(file, 0o600);
    writeSafetensorsAtomic(file, [f32('v', [3], [4, 5, 6])], { step: '2' });
    expect(listing()).toEqual(['model.safetensors']);
    const { tensors, metadata } = readSafetensors(file);
    expect([...tensors.keys()]).toEqual(['v']);
    expect(Array.from(tensors.get('v')!.data as Float32Array)).toEqual([4, 5, 6]);
    expect(metadata).toEqual({ step: '2' });
    if (process.platform !== 'win32') expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a serialization error leaves the previous file intact and no temp files', () => {
    const file = path.join(dir, 'model.safetensors');
    writeSafetensorsAtomic(file, [f32('w', [2], [1, 2])]);
    const before = fs.readFileSync(file);
    expect(() => writeSafetensorsAtomic(file, [f32('w', [3], [1, 2])])).toThrow(/needs 3 elements but data has 2/);
    expect(() => writeSafetensorsAtomic(file, [], { bad: 1 as unknown as string })).toThrow(/must be a string/);
    expect(listing()).toEqual(['model.safetensors']);
    expect(Buffer.compare(fs.readFileSync(file), before)).toBe(0);
  });

  it('a failing rename removes the temp file and leaves the target untouched', () => {
    // The target is a non-empty folder, so the temp file is written and fsynced but the rename fails.
    const target = path.join(dir, 'model.safetensors');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep'), 'x');
    expect(() => writeSafetensorsAtomic(target, [f32('w', [2], [1, 2])])).toThrow(
      /^ikun: cannot write safetensors file ".*model\.safetensors": /,
    );
    expect(listing()).toEqual(['model.safetensors']);
    expect(fs.readdirSync(target)).toEqual(['keep']);
  });

  it('a missing folder gives a clear error', () => {
    const file = path.join(dir, 'missing', 'model.safetensors');
    expect(() => writeSafetensorsAtomic(file, [f32('w', [1], [1])])).toThrow(/cannot write safetensors file .*ENOENT/);
    expect(listing()).toEqual([]);
  });

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  it.skipIf(isRoot || process.platform === 'win32')('an unwritable folder leaves the previous file intact', () => {
    const file = path.join(dir, 'model.safetensors');
    writeSafetensorsAtomic(file, [f32('w', [2], [1, 2])]);
    const before = fs.readFileSync(file);
    fs.chmodSync(dir, 0o555);
    expect(() => writeSafetensorsAtomic(file, [f32('w', [2], [3, 4])])).toThrow(/cannot write safetensors file/);
    fs.chmodSync(dir, 0o755);
    expect(listing()).toEqual(['model.safetensors']);
    expect(Buffer.compare(fs.readFileSync(file), before)).toBe(0);
  });

  it('readSafetensors names the file in errors', () => {
    const missing = path.join(dir, 'nope.safetensors');
    expect(() => readSafetensors(missing)).toThrow(/^ikun: cannot read safetensors file ".*nope\.safetensors": .*ENOENT/);
    const truncated = path.join(dir, 'truncated.safetensors');
    const bytes = serializeSafetensors([f32('w', [4], [1, 2, 3, 4])]);
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 2));
    expect(() => readSafetensors(truncated)).toThrow(/^ikun: safetensors file ".*truncated\.safetensors": tensor "w": .*outside/);
  });
});
