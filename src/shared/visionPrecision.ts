/**
 * One line on how a model's vision tower computes and what its build-time check measured, for
 * `prumerge build` and Installed Models... (model.json's vision.layerPrecision and verification).
 */
export interface VisionPrecisionFacts {
  readonly dtype?: string;
  readonly layerPrecision?: readonly string[];
  readonly verification?: {
    readonly weightBits: number;
    readonly projectedCosine: { readonly min: number; readonly mean: number };
    readonly keptOverlap: Readonly<Record<string, number>>;
    readonly keptScore: Readonly<Record<string, number>>;
    readonly passed: boolean;
  };
}

const percent = (x: number): string => `${Math.round(x * 100)}%`;

export function visionPrecisionText(v: VisionPrecisionFacts): string {
  const r = v.verification;
  if (!r) return `vision tower ${v.dtype ?? 'fp32'}`;
  const layers = v.layerPrecision ?? [];
  const int8 = layers.filter((p) => p === 'int8').length;
  const kept = Object.entries(r.keptScore)
    .map(([mode, share]) => `${mode} ${percent(share)}`)
    .join(', ');
  const figures = `projected rows' cosine ${r.projectedCosine.min.toFixed(4)} at worst, attention kept: ${kept}`;
  if (!r.passed) return `vision tower fp32: int8 was checked and fell short (${figures})`;
  return `vision tower int8 (${r.weightBits}-bit weights) in ${int8} of ${layers.length} layers, float32 in the rest; checked: ${figures}`;
}
