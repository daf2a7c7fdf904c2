/** What the host knows of a model folder without loading it: its model.json, read as plain JSON (no vscode, no onnxruntime). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the chat shows before the worker loads the model, from its model.json; undefined where that cannot be read. */
export interface ModelFacts {
  readonly randomWeights: boolean;
  /** Patches per vision-tower image (576 for LLaVA-1.5). */
  readonly patches: number;
  /** LLaVA-NeXT's anyres: the count depends on the image's size. */
  readonly anyres: boolean;
}

export function readModelFacts(modelDir: string): ModelFacts | undefined {
  try {
    const m = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8')) as {
      randomWeights?: unknown;
      vision?: { grid?: unknown };
      next?: unknown;
    };
    const grid = typeof m.vision?.grid === 'number' ? m.vision.grid : 0;
    return { randomWeights: m.randomWeights === true, patches: grid * grid, anyres: m.next !== undefined && m.next !== null };
  } catch {
    return undefined;
  }
}
