// The line protocol between the coordinator and its run-one children: with --events, a child prints one
// JSON object per line on stdout (what its point is doing), so the coordinator can draw one progress
// display for the whole grid. Anything else a child prints is kept for the error message.
import type { EpochMetrics, StepInfo } from '../fit.js';

export type PointEvent =
  | { ikun_event: 'log'; line: string }
  | { ikun_event: 'warn'; line: string }
  | { ikun_event: 'step'; epoch: number; step: number; steps: number; phase: 'train' | 'test'; loss: number }
  | { ikun_event: 'epoch'; metrics: EpochMetrics; epochs: number }
  | { ikun_event: 'done'; action: string; epochs_done: number };

export function eventLine(event: PointEvent): string {
  return JSON.stringify(event) + '\n';
}

/** The event a line holds, or null for an ordinary line. */
export function parseEventLine(line: string): PointEvent | null {
  if (!line.startsWith('{"ikun_event":')) return null;
  try {
    return JSON.parse(line) as PointEvent;
  } catch {
    return null;
  }
}

export function stepEvent(info: StepInfo): PointEvent {
  return { ikun_event: 'step', epoch: info.epoch, step: info.step, steps: info.steps, phase: info.phase, loss: info.loss };
}
