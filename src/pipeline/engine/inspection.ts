/** An encoded image's reduction as the heatmap reads it (plain JSON values, src/shared/results.ts). */
import { formatReduceMode } from '../../shared/reduceMode';
import type { ExecutionProvider, Inspection, SubImageInspection } from '../../shared/results';
import type { EncodedImage, EncodedSubImage } from './encodeImage';

/** The overview's reduction at the top level; LLaVA-NeXT's every sub-image below, with the token totals. */
export function inspectionOf(encoded: EncodedImage, grid: number, ep: ExecutionProvider, gridCoverage = 1, question?: string): Inspection {
  const subImages = encoded.subImages.map(subImageInspection);
  const overview = encoded.subImages[0]!.reduction;
  return {
    mode: formatReduceMode(overview.mode),
    n: overview.patches,
    ...subImages[0]!,
    grid,
    ...(gridCoverage < 1 ? { gridCoverage } : {}),
    timings: encoded.timings,
    ep,
    visionRuns: encoded.visionRuns,
    visionCached: encoded.visionCached,
    ...(encoded.layout ? { subImages, total: encoded.total, visualRows: encoded.rows } : {}),
    ...(question !== undefined ? { question } : {}),
  };
}

function subImageInspection(s: EncodedSubImage): SubImageInspection {
  const r = s.reduction;
  return {
    kind: s.kind,
    row: s.row,
    col: s.col,
    valid: Array.from(s.valid),
    rows: r.rows,
    kept: Array.from(r.kept),
    spatial: Array.from(r.spatial),
    clusters: r.clusters.map((c) => Array.from(c)),
    remainder: r.remainder,
    attention: Array.from(r.attention),
    score: r.score,
    geometry: s.geometry,
    ...(r.order ? { order: Array.from(r.order) } : {}),
    ...(r.relevance ? { relevance: Array.from(r.relevance) } : {}),
  };
}
