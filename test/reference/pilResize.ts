/**
 * Pillow's BICUBIC resample (Image.resize, the filter LLaVA's CLIPImageProcessor uses), restated
 * from its documented algorithm: separable, Keys cubic with a = -0.5, support widened by the
 * scale when downsampling, weights normalised per output pixel, horizontal pass first, rounded
 * to 8 bits between passes as Pillow does. float64, no optimisation: a reference for tests.
 */

function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function resample1d(
  src: Float64Array,
  inSize: number,
  outSize: number,
  stride: number,
  count: number,
  inStride: number,
  outStrideLine: number,
): Float64Array {
  // src lines: `count` lines, each of `inSize` samples spaced `stride` apart, lines `inStride` apart
  const out = new Float64Array(count * outSize);
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w: number[] = [];
    let total = 0;
    for (let i = lo; i < hi; i++) {
      const v = cubic((i - center + 0.5) / filterScale);
      w.push(v);
      total += v;
    }
    for (let line = 0; line < count; line++) {
      let acc = 0;
      for (let i = lo; i < hi; i++) acc += src[line * inStride + i * stride]! * (w[i - lo]! / total);
      out[line * outStrideLine + o] = acc;
    }
  }
  return out;
}

/** (h, w, 3) uint8 -> (outH, outW, 3) uint8. */
export function pilBicubicResize(rgb: Uint8Array, w: number, h: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH * 3);
  for (let c = 0; c < 3; c++) {
    const plane = new Float64Array(w * h);
    for (let p = 0; p < w * h; p++) plane[p] = rgb[p * 3 + c]!;
    // horizontal: h lines of w samples -> h lines of outW
    const horiz = resample1d(plane, w, outW, 1, h, w, outW).map((v) => clamp8(v));
    // vertical: outW columns of h samples (stride outW) -> stored column-major then transposed
    const vert = resample1d(horiz, h, outH, outW, outW, 1, outH);
    for (let x = 0; x < outW; x++) for (let y = 0; y < outH; y++) out[(y * outW + x) * 3 + c] = clamp8(vert[x * outH + y]!);
  }
  return out;
}

function clamp8(v: number): number {
  return Math.min(255, Math.max(0, Math.round(v)));
}
