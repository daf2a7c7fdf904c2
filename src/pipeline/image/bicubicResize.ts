/**
 * Bicubic resampling with Pillow's sampling grid (output pixel o samples the input at
 * (o + 0.5) * in / out - 0.5, Keys cubic, a = -0.5, the support widened by the scale when
 * shrinking), which transformers' LLaVA preprocessing uses. libvips matches Pillow when
 * shrinking (within 3 levels of 255, 0.2 on average) but enlarges on a grid shifted by half an
 * output pixel, so LLaVA-1.5 enlarges here; LLaVA-NeXT's tiles and overview, which may shrink
 * one side and enlarge the other, are resized here both ways.
 */

/** Per output pixel: the first input index and the normalised weights of its taps. */
interface Taps {
  readonly first: Int32Array; // (out)
  readonly count: Int32Array; // (out)
  readonly weights: Float64Array; // (out, width)
  readonly width: number;
}

function keys(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const width = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * width);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
    const hi = Math.min(Math.trunc(centre + support + 0.5), inSize);
    let total = 0;
    for (let i = lo; i < hi; i++) total += keys((i - centre + 0.5) / filterScale);
    first[o] = lo;
    count[o] = hi - lo;
    for (let i = lo; i < hi; i++) weights[o * width + (i - lo)] = keys((i - centre + 0.5) / filterScale) / total;
  }
  return { first, count, weights, width };
}

/**
 * (h, w, 3) uint8 -> (outH, outW, 3) uint8. Horizontal pass first, rounded to 8 bits between
 * the passes, as Pillow does for 8-bit images; a side that keeps its size is copied.
 */
export function resizeBicubic(rgb: Uint8Array, w: number, h: number, outW: number, outH: number): Uint8Array {
  const rows = outW === w ? rgb : horizontal(rgb, w, h, outW); // (h, outW, 3)
  if (outH === h) return rows === rgb ? rgb.slice() : rows;
  const ty = taps(h, outH);
  const out = new Uint8Array(outH * outW * 3); // (outH, outW, 3)
  for (let o = 0; o < outH; o++) {
    const y0 = ty.first[o]!;
    const n = ty.count[o]!;
    const base = o * ty.width;
    for (let x = 0; x < outW * 3; x++) {
      let acc = 0;
      for (let t = 0; t < n; t++) acc += ty.weights[base + t]! * rows[(y0 + t) * outW * 3 + x]!;
      out[o * outW * 3 + x] = clamp8(acc);
    }
  }
  return out;
}

function horizontal(rgb: Uint8Array, w: number, h: number, outW: number): Uint8Array {
  const tx = taps(w, outW);
  const rows = new Uint8Array(h * outW * 3);
  for (let y = 0; y < h; y++) {
    for (let o = 0; o < outW; o++) {
      const x0 = tx.first[o]!;
      const n = tx.count[o]!;
      const base = o * tx.width;
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let t = 0; t < n; t++) acc += tx.weights[base + t]! * rgb[(y * w + x0 + t) * 3 + c]!;
        rows[(y * outW + o) * 3 + c] = clamp8(acc);
      }
    }
  }
  return rows;
}

function clamp8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
