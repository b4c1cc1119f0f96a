// Just enough PNG reading to tell a drawn screenshot from a blank one: 8-bit RGB/RGBA, non-interlaced
// (what Chromium writes), the five scanline filters undone.
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

export interface Pixels {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

export function readPng(path: string): Pixels {
  const buf = readFileSync(path);
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error(`${path} is not a PNG`);
  let offset = 8, width = 0, height = 0, channels = 0;
  const idat: Buffer[] = [];
  while (offset < buf.length) {
    const length = buf.readUInt32BE(offset);
    const type = buf.toString('ascii', offset + 4, offset + 8);
    const body = buf.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8], colour = body[9], interlace = body[12];
      if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0) throw new Error(`${path}: only 8-bit RGB(A) non-interlaced PNGs are read here`);
      channels = colour === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const data = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? data[y * stride + x - channels]! : 0;
      const b = y > 0 ? data[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? data[(y - 1) * stride + x - channels]! : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const predictor = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      data[y * stride + x] = (line[x]! + predictor) & 0xff;
    }
  }
  return { width, height, channels, data };
}

/** Share of pixels that are not (near) white, and how many distinct colours (quantised) the image has. */
export function inkStatistics(p: Pixels): { inked: number; colours: number } {
  let inked = 0;
  const colours = new Set<number>();
  for (let i = 0; i < p.width * p.height; i++) {
    const r = p.data[i * p.channels]!, g = p.data[i * p.channels + 1]!, b = p.data[i * p.channels + 2]!;
    if (r < 235 || g < 235 || b < 235) inked++;
    colours.add(((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4));
  }
  return { inked: inked / (p.width * p.height), colours: colours.size };
}
