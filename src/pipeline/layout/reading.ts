/**
 * How one image is read for one question: the model's own layout (model.json's `layout` block,
 * src/format/visualLayout.ts) or, where it offers them, the other detail levels:
 *
 *   grid        one crop (the model's preprocessing), its patches the rows
 *   tiles       an overview and tiles; unreduced rows unpadded, downsampled above anyres_max_N,
 *               a newline row after each tile-grid row. medium: only grids of <= MEDIUM_MAX_TILES tiles
 *   paddedCrop  one crop padded to a square and a newline row (LLaVA-OneVision's detail low)
 */
import { UserError } from '../../common/errors';
import type { ModelManifest } from '../../format/modelManifest';
import type { PreprocessConfig } from '../../format/preprocessConfig';
import type { Pinpoints } from '../../format/visualLayout';
import { Detail, MEDIUM_MAX_TILES } from '../../shared/reduceMode';

export type Reading =
  | { readonly kind: 'grid'; readonly config: PreprocessConfig }
  | { readonly kind: 'paddedCrop'; readonly config: PreprocessConfig; readonly newline: Float32Array }
  | {
      readonly kind: 'tiles';
      readonly config: PreprocessConfig;
      readonly pinpoints: Pinpoints;
      readonly maxTiles?: number;
      readonly newline: Float32Array;
    };

/** A detail level the model does not offer. */
export class DetailError extends UserError {
  override readonly name = 'DetailError';
}

export function readingOf(m: Pick<ModelManifest, 'name' | 'layout' | 'preprocess' | 'vision'>, detail: Detail): Reading {
  const layout = m.layout;
  if (detail === 'low') {
    if (layout.kind !== 'tiles' || !layout.paddedCrop) {
      throw new DetailError(`${m.name} has no low-detail reading: --detail low is for LLaVA-OneVision models (use auto)`);
    }
    const size = m.vision.imageSize;
    const config = {
      ...m.preprocess,
      padToSquare: true,
      squash: false,
      exactResize: true,
      shortestEdge: size,
      cropWidth: size,
      cropHeight: size,
    };
    return { kind: 'paddedCrop', config, newline: Float32Array.from(layout.imageNewline) };
  }
  if (layout.kind === 'grid') {
    if (detail === 'medium')
      throw new DetailError(`${m.name} reads one crop: --detail medium is for models with tiles (LLaVA-NeXT, LLaVA-OneVision)`);
    return { kind: 'grid', config: m.preprocess };
  }
  return {
    kind: 'tiles',
    config: m.preprocess,
    pinpoints: detail === 'medium' ? fewTiles(layout.gridPinpoints, m.preprocess.cropWidth) : layout.gridPinpoints,
    ...(layout.maxTiles !== undefined ? { maxTiles: layout.maxTiles } : {}),
    newline: Float32Array.from(layout.imageNewline),
  };
}

/** The grids of at most MEDIUM_MAX_TILES tiles (the model then reads the best of them, as it would among all). */
function fewTiles(pinpoints: Pinpoints, tile: number): Pinpoints {
  const few = pinpoints.filter(([h, w]) => Math.round(h / tile) * Math.round(w / tile) <= MEDIUM_MAX_TILES);
  return few.length > 0 ? few : pinpoints;
}
