/** What the host knows of a model folder without loading it: its model.json, through the format's one reader (no onnxruntime). */
import { readManifestSync } from '../../format/modelManifest';
import { trainedOnSeveralImages } from '../../format/familyIds';
import { offeredDetails } from '../../format/visualLayout';
import type { OfferedDetails } from '../../shared/reductionChoices';

/** What the chat shows before the worker loads the model, from its model.json; undefined where that cannot be read. */
export interface ModelFacts {
  readonly randomWeights: boolean;
  /** Patches per vision-tower image (576 for LLaVA-1.5). */
  readonly patches: number;
  /** The side of the square the vision tower reads, in pixels (336 for LLaVA-1.5). */
  readonly imageSize: number;
  /** The tiled layouts (LLaVA-NeXT, LLaVA-OneVision): the count depends on the image's size. */
  readonly tiled: boolean;
  /** The readings besides the model's own layout: medium for the tiled layouts, low (one crop) for LLaVA-OneVision. */
  readonly details: OfferedDetails;
  /** Trained on several images in one conversation (LLaVA-OneVision, LLaVA-Interleave). */
  readonly severalImages: boolean;
  /** How the tower scores patches: CLS attention (CLIP), or the attention each receives (SigLIP, no CLS). */
  readonly score: 'cls' | 'received';
}

export function readModelFacts(modelDir: string): ModelFacts | undefined {
  try {
    const m = readManifestSync(modelDir);
    return {
      randomWeights: m.randomWeights === true,
      patches: m.vision.grid ** 2,
      imageSize: m.vision.imageSize,
      tiled: m.layout.kind === 'tiles',
      details: offeredDetails(m.layout),
      severalImages: trainedOnSeveralImages(m.family),
      score: m.vision.score ?? 'cls',
    };
  } catch {
    return undefined;
  }
}
