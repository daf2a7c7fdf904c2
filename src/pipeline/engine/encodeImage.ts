/**
 * Everything an image contributes to the prompt: crops -> vision.onnx -> reduce -> projector.onnx.
 * How the image becomes crops and rows is the layout room's (src/pipeline/layout): this runs the
 * graphs, one crop at a time (Stop is honoured between them), and times them.
 */
import * as ort from 'onnxruntime-node';
import type { ImageGeometry } from '../../shared/imageGeometry';
import type { Detail, ReduceMode } from '../../shared/reduceMode';
import type { SubImageKind, Timings } from '../../shared/results';
import type { AnyresLayout } from '../image/anyres';
import { countRows, Image, planCrops, rasterFor } from '../layout/cropPlan';
import { readingOf } from '../layout/reading';
import { visualRows } from '../layout/visualRows';
import { relevanceOver } from '../reduce/diversity';
import { reduceVisualTokens, Reduction } from '../reduce/prumerge';
import { isSelection, readsProjectedRows, selectVisualTokens, type SelectionMode } from '../reduce/selectTokens';
import { patchFeatures, rowsAt, TowerTaps, towerTaps } from '../reduce/visionTaps';
import { PROJECTOR_IO, VISION_IO } from '../../format/graphNames';
import type { ModelManifest } from '../../format/modelManifest';
import { runChecked } from '../runtime/sessions';
import { AskHooks, cancellationPoint, timed } from './stages';
import { cropKey, VisionCache } from './visionCache';

export interface EncodedSubImage {
  readonly kind: SubImageKind;
  readonly row: number;
  readonly col: number;
  /** Its patches that unpadding keeps (all for a single crop and the overview). */
  readonly valid: Int32Array;
  readonly reduction: Reduction;
  /** Where its model input came from in the user's image. */
  readonly geometry: ImageGeometry;
}

export interface EncodedImage {
  /** The crops that gave rows: one, or the tiled layouts' overview and non-empty tiles. */
  readonly subImages: readonly EncodedSubImage[];
  /** The tiled layouts' tile layout. */
  readonly layout?: AnyresLayout;
  /** Visual tokens without reduction. */
  readonly total: number;
  /** (rows, text hidden) the projected visual tokens, in the order they enter the prompt (empty when not projected). */
  readonly embeds: Float32Array;
  readonly rows: number;
  /** Crops the vision tower ran on: 1, or the overview and every tile (empty ones too). */
  readonly visionRuns: number;
  /** Of those, the crops whose tower outputs came from the cache (the tower did not run). */
  readonly visionCached: number;
  readonly timings: Pick<Timings, 'preprocessMs' | 'visionMs' | 'reduceMs' | 'projectorMs'>;
}

interface TokenCount {
  readonly total: number;
  readonly subImages: number;
}

export class ImageEncoder {
  constructor(
    private readonly manifest: ModelManifest,
    private readonly vision: ort.InferenceSession,
    private readonly projector: ort.InferenceSession,
    readonly cache = new VisionCache(),
  ) {}

  /** The tower's last few run times, ms. */
  private readonly towerMs: number[] = [];

  /**
   * `project` false: the heatmap's run, which needs the reduction only. `question`: the mean of the
   * question's token embeddings, which CDPruner weighs the patches by (absent: all alike).
   */
  async encode(
    image: Image,
    mode: ReduceMode,
    hooks: AskHooks = {},
    project = true,
    detail: Detail = 'auto',
    question?: Float64Array,
  ): Promise<EncodedImage> {
    const m = this.manifest;
    const reading = readingOf(m, detail); // refuses a detail the model does not offer
    const pre = await timed(hooks, 'preprocess', () => planCrops(reading, image, m.vision.grid));
    const plan = pre.value;
    let cached = 0;
    const taps = await timed(hooks, 'vision', async () => {
      const all: TowerTaps[] = [];
      for (const [i, crop] of plan.crops.entries()) {
        if (i > 0) cancellationPoint(hooks);
        const run = await this.visionTaps(crop.pixels);
        if (run.cached) cached++;
        all.push(run.taps);
      }
      return all;
    });
    const width = m.vision.hiddenSize;
    const reduced = await timed(hooks, 'reduce', async () => {
      // a tile that unpadding empties contributes nothing
      const crops = plan.crops.flatMap((crop, i) => (crop.valid.length === 0 ? [] : [{ crop, taps: taps.value[i]! }]));
      const reductions = isSelection(mode)
        ? await this.select(crops, mode, question)
        : crops.map(({ crop, taps }) => reduceVisualTokens(taps, mode, crop.valid));
      const subImages = crops.map(({ crop: { kind, row, col, valid, geometry } }, i) => ({
        kind,
        row,
        col,
        valid,
        geometry,
        reduction: reductions[i]!,
      }));
      return { subImages, rows: visualRows(reading, plan, taps.value, reductions, mode, width) };
    });
    const { subImages, rows } = reduced.value;
    const projected = await this.projectIf(project, hooks, async () =>
      rows.finish(await this.project(rows.features, rows.features.length / width), m.decoder.hiddenSize),
    );
    return {
      subImages,
      ...(plan.tiles ? { layout: plan.tiles } : {}),
      total: plan.tokens,
      embeds: projected.value,
      rows: rows.rows,
      visionRuns: plan.crops.length,
      visionCached: cached,
      timings: { preprocessMs: pre.ms, visionMs: taps.ms, reduceMs: reduced.ms, projectorMs: projected.ms },
    };
  }

  /**
   * Visual tokens `image` makes without reduction, and the crops the tower reads: no vision run.
   * For a tiled model's own layout also the same at medium detail, from the one decoding.
   */
  async imageTokens(image: Image, detail: Detail = 'auto'): Promise<TokenCount & { medium?: TokenCount }> {
    const m = this.manifest;
    const reading = readingOf(m, detail);
    const medium = detail === 'auto' && reading.kind === 'tiles' ? readingOf(m, 'medium') : undefined;
    const raster = await rasterFor(reading, image); // the medium reading is of the same tiled model
    const count = countRows(reading, m.vision.grid, raster);
    return medium ? { ...count, medium: countRows(medium, m.vision.grid, raster) } : count;
  }

  /**
   * The selections, crop by crop; CDPruner and DivPrune choose among the projector's rows (what the
   * language model reads), so each crop's valid patches are projected first, and CDPruner's
   * relevance is scaled over all the image's crops together.
   */
  private async select(
    crops: readonly { readonly crop: { readonly valid: Int32Array }; readonly taps: TowerTaps }[],
    mode: SelectionMode,
    question: Float64Array | undefined,
  ): Promise<Reduction[]> {
    const grid = this.manifest.vision.grid;
    if (!readsProjectedRows(mode)) return crops.map(({ crop, taps }) => selectVisualTokens(taps, mode, grid, crop.valid));
    const width = this.manifest.vision.hiddenSize;
    const hidden = this.manifest.decoder.hiddenSize;
    const projected: Float32Array[] = [];
    for (const { crop, taps } of crops)
      projected.push(await this.project(rowsAt(patchFeatures(taps), crop.valid, width), crop.valid.length));
    const weights = mode.kind === 'cdpruner' && question ? relevanceOver(projected, hidden, question) : undefined;
    return crops.map(({ crop, taps }, i) =>
      selectVisualTokens(taps, mode, grid, crop.valid, {
        projected: projected[i]!,
        projectedWidth: hidden,
        ...(weights ? { relevance: weights[i]! } : {}),
      }),
    );
  }

  /** The crops the tower reads of `image` for `detail`, as its input. */
  async cropPixels(image: Image, detail: Detail = 'auto'): Promise<Float32Array[]> {
    const plan = await planCrops(readingOf(this.manifest, detail), image, this.manifest.vision.grid);
    return plan.crops.map((c) => c.pixels);
  }

  /** Runs the tower on one crop into the cache, unless it is there; true when it was. */
  async readCrop(pixels: Float32Array): Promise<boolean> {
    return (await this.visionTaps(pixels)).cached;
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
