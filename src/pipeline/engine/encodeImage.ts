/**
 * Everything an image contributes to the prompt: preprocess -> vision.onnx -> reduce -> projector.onnx.
 * LLaVA-1.5 reads one image as one grid; LLaVA-NeXT an overview and tiles, one vision run each
 * (Stop is honoured between them), each reduced over the patches unpadding keeps.
 */
import * as ort from 'onnxruntime-node';
import type { ImageGeometry } from '../../shared/imageGeometry';
import type { ReduceMode } from '../../shared/reduceMode';
import type { SubImageKind, Timings } from '../../shared/results';
import { AnyresLayout, anyresLayout } from '../image/anyres';
import { subImageGeometry } from '../image/geometry';
import { decodeImage, preprocessImage } from '../image/preprocess';
import { preprocessAnyres } from '../image/preprocessAnyres';
import { insertNewlines, packUnreduced } from '../reduce/anyresFeatures';
import { reduceVisualTokens, Reduction } from '../reduce/prumerge';
import { VisionTaps } from '../reduce/visionTaps';
import { PROJECTOR_IO, VISION_IO } from '../runtime/graphNames';
import type { ModelManifest } from '../runtime/modelManifest';
import { runChecked } from '../runtime/sessions';
import { AskHooks, cancellationPoint, timed } from './stages';

export interface EncodedSubImage {
  readonly kind: SubImageKind;
  readonly row: number;
  readonly col: number;
  /** Its patches that unpadding keeps (all for LLaVA-1.5 and the overview). */
  readonly valid: Int32Array;
  readonly reduction: Reduction;
  /** Where its model input came from in the user's image. */
  readonly geometry: ImageGeometry;
}

export interface EncodedImage {
  /** One for LLaVA-1.5; LLaVA-NeXT's overview and tiles. */
  readonly subImages: readonly EncodedSubImage[];
  readonly layout?: AnyresLayout;
  /** Visual tokens without reduction. */
  readonly total: number;
  /** (rows, text hidden) the projected visual tokens, in the order they enter the prompt (empty when not projected). */
  readonly embeds: Float32Array;
  readonly rows: number;
  /** Images the vision tower ran on: 1, or LLaVA-NeXT's overview and every tile (empty ones too). */
  readonly visionRuns: number;
  readonly timings: Pick<Timings, 'preprocessMs' | 'visionMs' | 'reduceMs' | 'projectorMs'>;
}

type Image = string | Uint8Array;

export class ImageEncoder {
  constructor(
    private readonly manifest: ModelManifest,
    private readonly vision: ort.InferenceSession,
    private readonly projector: ort.InferenceSession,
  ) {}

  /** `project` false: the heatmap's run, which needs the reduction only. */
  encode(image: Image, mode: ReduceMode, hooks: AskHooks = {}, project = true): Promise<EncodedImage> {
    return this.manifest.next ? this.anyres(image, mode, hooks, project) : this.single(image, mode, hooks, project);
  }

  /** Visual tokens `image` makes without reduction, and the parts the tower reads: no vision run. */
  async imageTokens(image: Image): Promise<{ total: number; subImages: number }> {
    const m = this.manifest;
    if (!m.next) return { total: m.vision.grid ** 2, subImages: 1 };
    const decoded = await decodeImage(image);
    const layout = anyresLayout(decoded.raster, m.next.gridPinpoints, m.preprocess.cropWidth, m.vision.grid);
    return { total: layout.tokens, subImages: layout.subImages.length };
  }

  /** LLaVA-1.5: one image, one grid. */
  private async single(image: Image, mode: ReduceMode, hooks: AskHooks, project: boolean): Promise<EncodedImage> {
    const m = this.manifest;
    const pre = await timed(hooks, 'preprocess', () => preprocessImage(image, { config: m.preprocess }));
    const taps = await timed(hooks, 'vision', () => this.visionTaps(pre.value.pixelValues));
    const reduced = await timed(hooks, 'reduce', () => reduceVisualTokens(taps.value, mode));
    const reduction = reduced.value;
    const projected = await this.projectIf(project, hooks, () => this.project(reduction.features, reduction.rows));
    const valid = Int32Array.from({ length: m.vision.grid ** 2 }, (_, i) => i);
    return {
      subImages: [{ kind: 'overview', row: 0, col: 0, valid, reduction, geometry: pre.value.geometry }],
      total: reduction.patches,
      embeds: projected.value,
      rows: reduction.rows,
      visionRuns: 1,
      timings: { preprocessMs: pre.ms, visionMs: taps.ms, reduceMs: reduced.ms, projectorMs: projected.ms },
    };
  }

  /** LLaVA-NeXT: the overview and the tiles. */
  private async anyres(image: Image, mode: ReduceMode, hooks: AskHooks, project: boolean): Promise<EncodedImage> {
    const m = this.manifest;
    const next = m.next!;
    const pre = await timed(hooks, 'preprocess', () =>
      preprocessAnyres(image, next.gridPinpoints, m.vision.grid, { config: m.preprocess }),
    );
    const { layout, pixelValues, source } = pre.value;
    const plane = 3 * m.vision.imageSize ** 2;
    const taps = await timed(hooks, 'vision', async () => {
      const all: VisionTaps[] = [];
      for (let i = 0; i < layout.subImages.length; i++) {
        if (i > 0) cancellationPoint(hooks);
        all.push(await this.visionTaps(pixelValues.subarray(i * plane, (i + 1) * plane)));
      }
      return all;
    });
    const width = m.vision.hiddenSize;
    const reduced = await timed(hooks, 'reduce', () => {
      // a tile that unpadding empties contributes nothing
      const subImages = layout.subImages.flatMap((sub, i) =>
        sub.valid.length === 0
          ? []
          : [{ ...sub, reduction: reduceVisualTokens(taps.value[i]!, mode, sub.valid), geometry: subImageGeometry(layout, i, source) }],
      );
      const packed =
        mode.kind === 'none'
          ? packUnreduced(
              taps.value.map((x) => x.hidden.subarray(width)),
              layout,
              width,
            )
          : { features: concatRows(subImages.map((s) => s.reduction.features)), plan: undefined };
      return { subImages, packed };
    });
    const { subImages, packed } = reduced.value;
    const projected = await this.projectIf(project, hooks, async () => {
      const rows = await this.project(packed.features, packed.features.length / width);
      return packed.plan ? insertNewlines(rows, m.decoder.hiddenSize, packed.plan, Float32Array.from(next.imageNewline)) : rows;
    });
    return {
      subImages,
      layout,
      total: layout.tokens,
      embeds: projected.value,
      rows: packed.plan ? layout.tokens : packed.features.length / width,
      visionRuns: layout.subImages.length,
      timings: { preprocessMs: pre.ms, visionMs: taps.ms, reduceMs: reduced.ms, projectorMs: projected.ms },
    };
  }

  private async projectIf(
    project: boolean,
    hooks: AskHooks,
    work: () => Promise<Float32Array>,
  ): Promise<{ value: Float32Array; ms: number }> {
    return project ? timed(hooks, 'projector', work) : { value: new Float32Array(0), ms: 0 };
  }

  /**
   * vision.onnx on one image or sub-image. (The graph takes a batch, but five sub-images at once
   * measured slower here than one at a time: docs/benchmarks.md, "LLaVA-NeXT".)
   */
  private async visionTaps(pixels: Float32Array): Promise<VisionTaps> {
    const m = this.manifest;
    const size = m.vision.imageSize;
    const out = await runChecked(
      this.vision,
      { [VISION_IO.pixels]: new ort.Tensor('float32', pixels, [1, 3, size, size]) },
      'vision tower',
    );
    return {
      tokens: m.vision.grid * m.vision.grid + 1,
      width: m.vision.hiddenSize,
      hidden: out[VISION_IO.hidden]!.data as Float32Array,
      q: out[VISION_IO.q]!.data as Float32Array,
      k: out[VISION_IO.k]!.data as Float32Array,
    };
  }

  /** projector.onnx: (rows, vision width) -> (rows, text hidden). */
  private async project(features: Float32Array, rows: number): Promise<Float32Array> {
    const width = this.manifest.vision.hiddenSize;
    const proj = await runChecked(
      this.projector,
      { [PROJECTOR_IO.features]: new ort.Tensor('float32', features, [rows, width]) },
      'projector',
    );
    return proj[PROJECTOR_IO.embeds]!.data as Float32Array;
  }
}

/** (rows, width) blocks one after the other. */
function concatRows(blocks: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}
