/**
 * What the user should know about an image before trusting an answer about it, said the same way
 * when it is attached, under an answer and by `prumerge ask`. Pure: the webviews use it too.
 */

/** Below this share of the model's input side, an image is enlarged so much that little of it survives. */
const TOO_SMALL_SHARE = 1 / 4;

/**
 * The note for an image far below the resolution the model reads (a 4 x 4 icon read at 336 x 336),
 * or undefined when the image is large enough.
 */
export function lowResolutionNote(name: string, size: { width: number; height: number }, modelSide: number): string | undefined {
  const longest = Math.max(size.width, size.height);
  if (!(longest > 0) || longest >= modelSide * TOO_SMALL_SHARE) return undefined;
  const factor = Math.round(modelSide / longest);
  return (
    `${name} is ${size.width} x ${size.height} pixels, far below the ${modelSide} x ${modelSide} the model reads: ` +
    `it is enlarged about ${factor}x, so the answer will mean little. Use a larger image if you have one.`
  );
}

/**
 * How many of the image's crops the vision tower did not run for, because the worker had their
 * outputs from an earlier question; undefined when it ran on all of them.
 */
export function cachedCropsText(visual: { readonly visionRuns: number; readonly visionCached?: number }): string | undefined {
  const cached = visual.visionCached ?? 0;
  if (cached === 0) return undefined;
  if (visual.visionRuns === 1) return 'image read from memory';
  return cached === visual.visionRuns ? `all ${cached} crops read from memory` : `${cached} of ${visual.visionRuns} crops read from memory`;
}
