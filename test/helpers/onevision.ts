/** Float64 references for LLaVA-OneVision's pieces (SigLIP taps, received-attention PruMerge, projector), shared by its tests. */
import type { Engine } from '../../src/pipeline/engine/engine';
import { featureLayer } from '../../src/families/llavaConfig';
import { TinyCheckpoint, visionRef } from './checkpoints';
import { decodePng } from './images';
import { projector, receivedAttention, siglipVision } from '../reference/llavaReference';
import { pilBicubicResize } from '../reference/pilResize';
import { referencePruMergeReceived } from '../reference/prumergeReference';

export const MODES = ['none', 'prumerge', 'prumerge+', 'topk:3'] as const;
export type Mode = (typeof MODES)[number];

export interface Subject {
  readonly engine: Engine;
  readonly ckpt: TinyCheckpoint;
}

const normalise = (rgb: Uint8Array, tile: number): Float32Array => {
  const pixels = new Float32Array(3 * tile * tile);
  for (let c = 0; c < 3; c++) for (let p = 0; p < tile * tile; p++) pixels[c * tile * tile + p] = (rgb[p * 3 + c]! / 255 - 0.5) / 0.5;
  return pixels;
};

/** SigLIP's taps of one sub-image, in float64: the features, the same layer's keys and received attention. */
export function towerTaps(ckpt: TinyCheckpoint, rgb: Uint8Array): { hidden: number[][]; k: number[][]; received: number[] } {
  const { config, weights } = ckpt;
  const u = featureLayer(config);
  const vis = siglipVision(visionRef(config), weights, normalise(rgb, config.vision.imageSize));
  return {
    hidden: vis.hiddenStates[u + 1]!.map((r) => Array.from(r)),
    k: vis.k[u]!.map((r) => Array.from(r)),
    received: Array.from(receivedAttention(vis.q[u]!, vis.k[u]!, config.vision.numHeads)),
  };
}

export function reduce(
  t: ReturnType<typeof towerTaps>,
  mode: Exclude<Mode, 'none'>,
  valid?: number[],
): ReturnType<typeof referencePruMergeReceived> {
  return referencePruMergeReceived(t.hidden, t.k, t.received, mode === 'topk:3' ? { topk: 3 } : mode, valid);
}

export const projectRows = (ckpt: TinyCheckpoint, rows: number[][]): Float64Array[] =>
  projector(
    ckpt.weights,
    rows.map((r) => Float64Array.from(r)),
    ckpt.config.text.hiddenSize,
    ckpt.config.projectorHiddenAct,
  );

/** One crop: padded to a square with int(0.5 * 255) = 127, centred, resized to the tower's size; its rows and a newline. */
export async function referenceLow(ckpt: TinyCheckpoint, image: string, mode: Mode): Promise<{ rows: Float64Array[]; kept: number[][] }> {
  const tile = ckpt.config.vision.imageSize;
  const img = await decodePng(image);
  const side = Math.max(img.width, img.height);
  const canvas = new Uint8Array(side * side * 3).fill(127);
  const left = Math.floor((side - img.width) / 2);
  const top = Math.floor((side - img.height) / 2);
  for (let y = 0; y < img.height; y++)
    canvas.set(img.rgb.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y + top) * side + left) * 3);
  const t = towerTaps(ckpt, pilBicubicResize(canvas, side, side, tile, tile));
  if (mode === 'none')
    return { rows: [...projectRows(ckpt, t.hidden), Float64Array.from(ckpt.weights('image_newline'))], kept: [[...t.hidden.keys()]] };
  const r = reduce(t, mode);
  return { rows: projectRows(ckpt, r.features), kept: [r.kept] };
}
