/** What the host knows of a model folder without loading it: its model.json, read as plain JSON (no vscode, no onnxruntime). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OfferedDetails } from '../../shared/reductionChoices';

/** What the chat shows before the worker loads the model, from its model.json; undefined where that cannot be read. */
export interface ModelFacts {
  readonly randomWeights: boolean;
  /** Patches per vision-tower image (576 for LLaVA-1.5). */
  readonly patches: number;
  /** The side of the square the vision tower reads, in pixels (336 for LLaVA-1.5); 0 where model.json lacks it. */
  readonly imageSize: number;
  /** The anyres layouts (LLaVA-NeXT, LLaVA-OneVision): the count depends on the image's size. */
  readonly anyres: boolean;
  /** The readings besides the model's own layout: medium for the tiled layouts, low (one crop) for LLaVA-OneVision. */
  readonly details: OfferedDetails;
}

export function readModelFacts(modelDir: string): ModelFacts | undefined {
  try {
    const m = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8')) as {
      randomWeights?: unknown;
      vision?: { grid?: unknown; imageSize?: unknown };
      next?: { maxTiles?: unknown } | null;
    };
    const grid = typeof m.vision?.grid === 'number' ? m.vision.grid : 0;
    const anyres = m.next !== undefined && m.next !== null;
    const imageSize = typeof m.vision?.imageSize === 'number' ? m.vision.imageSize : 0;
    const details = { medium: anyres, low: anyres && typeof m.next?.maxTiles === 'number' };
    return { randomWeights: m.randomWeights === true, patches: grid * grid, imageSize, anyres, details };
  } catch {
    return undefined;
  }
}
