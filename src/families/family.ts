/**
 * A LLaVA model is three choices, each a folder under src/families (docs/architecture.md,
 * "Model families"): the vision tower (clip, siglip), the text model (llama, mistral, qwen2) and
 * the layout that joins them (llava: one image; llava_next and llava_onevision: anyres tiles).
 * The registry picks one of each from config.json; everything else reads the parsed config.
 */
import type { DataType } from '../onnx/onnxGraph';
import type { Ops, LinearFormat } from '../onnx/ops';
import type { FamilyIds, LayoutId, PatchScore, TextModelId, VisionTowerId } from '../format/familyIds';

/** The format of each encoder layer's linear layers (a layer that failed the int8 check stays float). */
export type LayerFormat = (layer: number) => LinearFormat;

/** One format for every layer. */
export const everyLayer =
  (format: LinearFormat): LayerFormat =>
  () =>
    format;
import type { TensorSpec } from '../checkpoint/tensorSpec';
import type { Json } from '../checkpoint/configFields';

export type { FamilyIds, LayoutId, PatchScore, TextModelId, VisionTowerId };
import type { PreprocessConfig } from '../format/preprocessConfig';

export type VisionAct = 'quick_gelu' | 'gelu' | 'gelu_pytorch_tanh';

export interface VisionConfig {
  readonly hiddenSize: number; // C
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly numChannels: number;
  readonly layerNormEps: number;
  readonly hiddenAct: VisionAct;
}

export interface TextConfig {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
  /** q_proj, k_proj and v_proj carry biases (Qwen2). */
  readonly attentionBias: boolean;
}

/** Anyres layouts: the tile grids an image may be read at. */
export interface AnyresConfig {
  /** image_grid_pinpoints: (height, width) in pixels, each a multiple of the tower's image size. */
  readonly gridPinpoints: readonly (readonly [number, number])[];
  /** anyres_max_N (LLaVA-OneVision): unreduced tile grids larger than N tiles' patches are downsampled to about that many. */
  readonly maxTiles?: number;
}

export interface LlavaConfig {
  readonly family: FamilyIds;
  readonly vision: VisionConfig;
  readonly text: TextConfig;
  readonly imageTokenIndex: number;
  /** Which hidden_states entry feeds the projector (-2: the input of the last layer). */
  readonly visionFeatureLayer: number;
  readonly projectorHiddenAct: 'gelu' | 'quick_gelu';
  /** The tiled (anyres) layouts only: LLaVA-NeXT, LLaVA-OneVision. */
  readonly tiles?: AnyresConfig;
}

export interface VisionTowerFamily {
  readonly id: VisionTowerId;
  /** vision_config.model_type */
  readonly modelType: string;
  readonly score: PatchScore;
  /** The vision_feature_select_strategy that drops nothing but a CLS token. */
  readonly selectStrategy: 'default' | 'full';
  config(v: Json): VisionConfig;
  /** The preprocessing for a checkpoint without preprocessor_config.json, and for synthetic builds. */
  defaultPreprocess(imageSize: number): PreprocessConfig;
  /**
   * The encoder layer the graph stops in: its q / k are PruMerge's. Refuses a feature layer the
   * tower's scoring cannot use.
   */
  scoreLayer(config: LlavaConfig): number;
  tensors(config: VisionConfig): TensorSpec[];
  /** Whether a build reads the tower's tensor `name` (the layers after the graph's end are not). */
  reads(name: string, config: LlavaConfig): boolean;
  /** The tower's graph, each encoder layer's linear layers in the format `format(layer)` gives. */
  makeGraph(ops: Ops, config: LlavaConfig, format: LayerFormat): Promise<void>;
}

export interface TextModelFamily {
  readonly id: TextModelId;
  readonly modelType: string;
  /** text_config with the model's own transformers defaults filled in. */
  config(t: Json, tieAtTop: unknown): TextConfig;
  /** Refuses what the decoder graph does not build (sliding windows shorter than the context, ...). */
  check(t: Json, config: TextConfig): void;
  tensors(config: TextConfig): TensorSpec[];
  /** decoder.onnx: the linear layers in `format`, attention and its KV cache in `kvType`. */
  makeGraph(ops: Ops, config: LlavaConfig, format: LinearFormat, kvType: DataType): Promise<void>;
  /** Tokenizer files and chat template for synthetic (random-weight) builds of this text model. */
  syntheticTokenizer(imageTokenIndex: number): SyntheticTokenizer;
}

export interface SyntheticTokenizer {
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly chatTemplate: string;
}

export interface LayoutFamily {
  readonly id: LayoutId;
  /** config.json's model_type and its architectures entry. */
  readonly modelType: string;
  readonly architecture: string;
  /** An example checkpoint, for error messages. */
  readonly example: string;
  anyres(json: Json, tile: number): AnyresConfig | undefined;
  /** Whether the model also reads an image as one padded crop and a newline row (detail low: LLaVA-OneVision's reading of one of several images). */
  readonly paddedCrop: boolean;
}
