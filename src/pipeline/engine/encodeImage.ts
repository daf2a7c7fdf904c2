/**
 * Everything an image contributes to the prompt: preprocess -> vision.onnx -> reduce -> projector.onnx.
 * LLaVA-1.5 reads one image as one grid; the anyres layouts (LLaVA-NeXT, LLaVA-OneVision) an
 * overview and tiles, one vision run each (Stop is honoured between them), each reduced over the
 * patches unpadding keeps. What differs between families is data in model.json: the tower's
 * patch score, the grids, anyres_max_N.
 */
import * as ort from 'onnxruntime-node';
import type { ImageGeometry } from '../../shared/imageGeometry';
import { Detail, MEDIUM_MAX_TILES, ReduceMode } from '../../shared/reduceMode';
import type { SubImageKind, Timings } from '../../shared/results';
import { AnyresLayout, anyresLayout } from '../image/anyres';
import { subImageGeometry } from '../image/geometry';
import { decodeImage, preprocessImage } from '../image/preprocess';
import { preprocessAnyres } from '../image/preprocessAnyres';
import { downsampleGrid, insertNewlines, packUnreduced } from '../reduce/anyresFeatures';
import { reduceVisualTokens, Reduction } from '../reduce/prumerge';
import { TowerTaps } from '../reduce/visionTaps';
import { PROJECTOR_IO, VISION_IO } from '../../format/graphNames';
import { ModelManifest, offersLowDetail } from '../../format/modelManifest';
import type { PreprocessConfig } from '../../format/preprocessConfig';
import { EngineError } from './request';
import { runChecked } from '../runtime/sessions';
import { AskHooks, cancellationPoint, timed } from './stages';
import { cropKey, VisionCache } from './visionCache';

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
  /** Of those, the crops whose tower outputs came from the cache (the tower did not run). */
  readonly visionCached: number;
  readonly timings: Pick<Timings, 'preprocessMs' | 'visionMs' | 'reduceMs' | 'projectorMs'>;
}

type Image = string | Uint8Array;

/** What a question without a picture contributes: nothing. */
export const NO_IMAGE: EncodedImage = {
  subImages: [],
  total: 0,
  embeds: new Float32Array(0),
  rows: 0,
  visionRuns: 0,
  visionCached: 0,
  timings: { preprocessMs: 0, visionMs: 0, reduceMs: 0, projectorMs: 0 },
};

export class ImageEncoder {
  constructor(
    private readonly manifest: ModelManifest,
    private readonly vision: ort.InferenceSession,
    private readonly projector: ort.InferenceSession,
    readonly cache = new VisionCache(),
  ) {}

  /** The tower's last few run times, ms. */
  private readonly towerMs: number[] = [];

  /** `project` false: the heatmap's run, which needs the reduction only. */
  async encode(image: Image, mode: ReduceMode, hooks: AskHooks = {}, project = true, detail: Detail = 'auto'): Promise<EncodedImage> {
    if (detail === 'low') return this.single(image, mode, hooks, project, this.lowDetail());
    const pinpoints = this.pinpoints(detail); // refuses medium for a model with one grid
    return this.manifest.next ? this.anyres(image, mode, hooks, project, pinpoints) : this.single(image, mode, hooks, project);
  }

  /**
   * The grids the tiled layouts choose from: the model's own; for `medium`, those of at most
   * MEDIUM_MAX_TILES tiles (the model then reads the best of them, as it would among all).
   * Refuses `medium` for a model without tiles.
   */
  private pinpoints(detail: Detail): Pinpoints {
    const m = this.manifest;
    if (!m.next) {
      if (detail === 'medium')
        throw new EngineError(`${m.name} reads one crop: --detail medium is for models with tiles (LLaVA-NeXT, LLaVA-OneVision)`);
      return [];
    }
    if (detail !== 'medium') return m.next.gridPinpoints;
    const crop = m.preprocess.cropWidth;
    const few = m.next.gridPinpoints.filter(([h, w]) => Math.round(h / crop) * Math.round(w / crop) <= MEDIUM_MAX_TILES);
    return few.length > 0 ? few : m.next.gridPinpoints;
  }

  /**
   * Visual tokens `image` makes without reduction, and the parts the tower reads: no vision run.
   * For a tiled model's own layout also the same at medium detail, from the one decoding.
   */
  async imageTokens(image: Image, detail: Detail = 'auto'): Promise<TokenCount & { medium?: TokenCount }> {
    const m = this.manifest;
    if (detail === 'low') {
      this.lowDetail(); // refused, as for encode, by models without that reading
      return { total: m.vision.grid ** 2 + 1, subImages: 1 };
    }
    const pinpoints = this.pinpoints(detail);
    if (!m.next) return { total: m.vision.grid ** 2, subImages: 1 };
    const { raster } = await decodeImage(image);
    const count = (grids: Pinpoints): TokenCount => {
      const layout = anyresLayout(raster, grids, m.preprocess.cropWidth, m.vision.grid, m.next!.maxTiles);
      return { total: layout.tokens, subImages: layout.subImages.length };
    };
    return detail === 'auto' ? { ...count(pinpoints), medium: count(this.pinpoints('medium')) } : count(pinpoints);
  }

  /** The crops the tower reads of `image` for `detail`, as its input (LLaVA-1.5: one; the anyres layouts: base and tiles). */
  async cropPixels(image: Image, detail: Detail = 'auto'): Promise<Float32Array[]> {
    const m = this.manifest;
    const pinpoints = this.pinpoints(detail);
    if (detail === 'low' || !m.next) {
      const config = detail === 'low' ? this.lowDetail().config : m.preprocess;
      return [(await preprocessImage(image, { config })).pixelValues];
    }
    const pre = await preprocessAnyres(image, pinpoints, m.vision.grid, { config: m.preprocess, maxTiles: m.next.maxTiles });
    const plane = 3 * m.vision.imageSize ** 2;
    return pre.layout.subImages.map((_, i) => pre.pixelValues.subarray(i * plane, (i + 1) * plane));
  }

  /** Runs the tower on one crop into the cache, unless it is there; true when it was. */
  async readCrop(pixels: Float32Array): Promise<boolean> {
    return (await this.visionTaps(pixels)).cached;
  }

  /**
   * `detail: low`: LLaVA-OneVision's reading of one of several images (image_processing_llava_onevision:
   * padded to a square with int(image_mean * 255), resized to one crop; modeling: its rows and one
   * image_newline). Refused for layouts without that path.
   */
  private lowDetail(): SingleCrop {
    const m = this.manifest;
    if (!offersLowDetail(m)) {
      throw new EngineError(`${m.name} has no low-detail reading: --detail low is for LLaVA-OneVision models (use auto)`);
    }
    const size = m.vision.imageSize;
    return {
      config: {
        ...m.preprocess,
        padToSquare: true,
        squash: false,
        exactResize: true,
        shortestEdge: size,
        cropWidth: size,
        cropHeight: size,
      },
      newline: Float32Array.from(m.next!.imageNewline),
    };
  }

  /** LLaVA-1.5 and LLaVA-Interleave: one image, one grid (or, for `detail: low`, one crop and a newline). */
  private async single(image: Image, mode: ReduceMode, hooks: AskHooks, project: boolean, crop: SingleCrop = {}): Promise<EncodedImage> {
    const m = this.manifest;
    const pre = await timed(hooks, 'preprocess', () => preprocessImage(image, { config: crop.config ?? m.preprocess }));
    const taps = await timed(hooks, 'vision', () => this.visionTaps(pre.value.pixelValues));
    const reduced = await timed(hooks, 'reduce', () => reduceVisualTokens(taps.value.taps, mode));
    const reduction = reduced.value;
    // the newline row follows the crop's rows only unreduced: a reduction replaces the layout's extra rows
    const newline = mode.kind === 'none' ? crop.newline : undefined;
    const projected = await this.projectIf(project, hooks, async () => {
      const rows = await this.project(reduction.features, reduction.rows);
      return newline ? concatRows([rows, newline]) : rows;
    });
    const valid = Int32Array.from({ length: m.vision.grid ** 2 }, (_, i) => i);
    return {
      subImages: [{ kind: 'overview', row: 0, col: 0, valid, reduction, geometry: pre.value.geometry }],
      total: reduction.patches + (crop.newline ? 1 : 0),
      embeds: projected.value,
      rows: reduction.rows + (newline ? 1 : 0),
      visionRuns: 1,
      visionCached: taps.value.cached ? 1 : 0,
      timings: { preprocessMs: pre.ms, visionMs: taps.ms, reduceMs: reduced.ms, projectorMs: projected.ms },
    };
  }

  /** LLaVA-NeXT: the overview and the tiles. */
  private async anyres(image: Image, mode: ReduceMode, hooks: AskHooks, project: boolean, pinpoints: Pinpoints): Promise<EncodedImage> {
    const m = this.manifest;
    const next = m.next!;
    const pre = await timed(hooks, 'preprocess', () =>
      preprocessAnyres(image, pinpoints, m.vision.grid, { config: m.preprocess, maxTiles: next.maxTiles }),
    );
    const { layout, pixelValues, source } = pre.value;
    const plane = 3 * m.vision.imageSize ** 2;
    let cached = 0;
    const taps = await timed(hooks, 'vision', async () => {
      const all: TowerTaps[] = [];
      for (let i = 0; i < layout.subImages.length; i++) {
        if (i > 0) cancellationPoint(hooks);
        const run = await this.visionTaps(pixelValues.subarray(i * plane, (i + 1) * plane));
        if (run.cached) cached++;
        all.push(run.taps);
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
          ? packUnreduced(taps.value.map(patchFeatures), layout, width)
          : { features: concatRows(subImages.map((s) => s.reduction.features)), plan: undefined };
      return { subImages, packed };
    });
    const { subImages, packed } = reduced.value;
    const projected = await this.projectIf(project, hooks, async () => {
      const rows = await this.project(packed.features, packed.features.length / width);
      if (!packed.plan) return rows;
      const hidden = m.decoder.hiddenSize;
      // OneVision downsamples the projected grid: interpolation mixes rows after the projector's non-linearity
      const grid = layout.downsampled ? downsampleGrid(rows, hidden, packed.plan, layout.downsampled) : { embeds: rows, plan: packed.plan };
      return insertNewlines(grid.embeds, hidden, grid.plan, Float32Array.from(next.imageNewline));
    });
    return {
      subImages,
      layout,
      total: layout.tokens,
      embeds: projected.value,
      rows: packed.plan ? layout.tokens : packed.features.length / width,
      visionRuns: layout.subImages.length,
      visionCached: cached,
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
   * vision.onnx on one image or sub-image, unless the cache holds its outputs. (The graph takes a
   * batch, but five sub-images at once measured slower here than one at a time:
   * docs/benchmarks.md, "LLaVA-NeXT".)
   */
  private async visionTaps(pixels: Float32Array): Promise<{ taps: TowerTaps; cached: boolean }> {
    const key = cropKey(pixels);
    const hit = this.cache.get(key);
    if (hit) return { taps: hit, cached: true };
    const taps = await this.runTower(pixels);
    this.cache.set(key, taps);
    return { taps, cached: false };
  }

  /** The median of the tower's last runs, ms per crop; undefined before it has run. */
  get msPerCrop(): number | undefined {
    const t = [...this.towerMs].sort((a, b) => a - b);
    return t.length === 0 ? undefined : t[Math.floor(t.length / 2)];
  }

  private async runTower(pixels: Float32Array): Promise<TowerTaps> {
    const size = this.manifest.vision.imageSize;
    const started = performance.now();
    const out = await runChecked(
      this.vision,
      { [VISION_IO.pixels]: new ort.Tensor('float32', pixels, [1, 3, size, size]) },
      'vision tower',
    );
    this.towerMs.push(performance.now() - started);
    if (this.towerMs.length > 9) this.towerMs.shift();
    return towerTaps(this.manifest.vision, (name) => out[name]?.data as Float32Array);
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

/** What the reduction reads of one vision.onnx run, by the tower's patch score. */
export function towerTaps(
  vision: Pick<ModelManifest['vision'], 'score' | 'grid' | 'hiddenSize'>,
  output: (name: string) => Float32Array,
): TowerTaps {
  const patches = vision.grid * vision.grid;
  const width = vision.hiddenSize;
  if (vision.score === 'received') {
    return { tokens: patches, width, hidden: output(VISION_IO.hidden), k: output(VISION_IO.k), received: output(VISION_IO.received) };
  }
  return { tokens: patches + 1, width, hidden: output(VISION_IO.hidden), q: output(VISION_IO.q), k: output(VISION_IO.k) };
}

type Pinpoints = NonNullable<ModelManifest['next']>['gridPinpoints'];

interface TokenCount {
  readonly total: number;
  readonly subImages: number;
}

/** How `single` reads its one crop: the preprocessing (default the model's) and a newline row after it. */
interface SingleCrop {
  readonly config?: PreprocessConfig;
  readonly newline?: Float32Array;
}

/** (patches, width) the features the projector reads: CLS dropped where the tower has one. */
export function patchFeatures(taps: TowerTaps): Float32Array {
  return 'received' in taps ? taps.hidden : taps.hidden.subarray(taps.width);
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
