// A small 3-channel image set a convolutional SNN learns in a few epochs: the class decides which colour
// channel is bright, and where (top half, bottom half, everywhere), under uniform noise.
import { data, Generator } from '../../lib/index.js';

export function colourSquares(count: number, seed: number, size = 8): data.Dataset {
  const g = new Generator(seed);
  const plane = size * size;
  const images = new Float32Array(count * 3 * plane), labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let ch = 0; ch < 3; ch++) {
      for (let p = 0; p < plane; p++) {
        const top = Math.floor(p / size) < size / 2;
        const on = ch === c && (c === 0 ? top : c === 1 ? !top : true);
        images[(i * 3 + ch) * plane + p] = Math.min(1, Math.max(0, (on ? 0.8 : 0.2) + 0.3 * (g.uniform() - 0.5)));
      }
    }
  }
  return data.fromArrays(images, labels, [3, size, size]);
}
