/** What a build reads, and its progress as it reads it (the build's progress bar and notification). */
import type { WeightDtype } from '../format/modelManifest';
import type { LlavaConfig } from '../families/llavaConfig';
import { TEXT, WeightSource } from '../checkpoint/weights';
import { tensorsToRead } from '../families/llavaTensors';

/** Bytes written per float32 byte read, at least: int4 stores the quantised matrices in 4 of 32 bits. */
const OUTPUT_PER_INPUT_BYTE: Record<WeightDtype, number> = { fp32: 1, fp16: 0.5, int4: 0.125 };

export interface BuildProgress {
  /** `int8 check`: the int8 vision tower tried on calibration images, layer by layer (reads not counted). */
  readonly stage: 'int8 check' | 'vision' | 'projector' | 'decoder' | 'embeddings' | 'tokenizer' | 'manifest';
  readonly tensorsRead: number;
  readonly tensorsTotal: number;
  /** float32 bytes of the tensors read, and of all a build reads. */
  readonly bytesRead: number;
  readonly bytesTotal: number;
}

export interface ReadPlan {
  readonly tensorsTotal: number;
  /** float32 bytes of all the tensors a build reads. */
  readonly bytesTotal: number;
  /** A lower bound on what is written: the float32 embedding table, the rest at the output precision. */
  readonly bytesAtLeast: number;
}

export function planReads(config: LlavaConfig, dtype: WeightDtype): ReadPlan {
  const plan = tensorsToRead(config);
  if (config.text.tieWordEmbeddings) plan.push(plan.find((p) => p.name === `${TEXT}.embed_tokens.weight`)!);
  const bytesTotal = plan.reduce((n, p) => n + 4 * p.shape.reduce((a, b) => a * b, 1), 0);
  const tableBytes = 4 * config.text.vocabSize * config.text.hiddenSize;
  return {
    tensorsTotal: plan.length,
    bytesTotal,
    bytesAtLeast: Math.round(tableBytes + (bytesTotal - tableBytes) * OUTPUT_PER_INPUT_BYTE[dtype]),
  };
}

/** Counts tensors and bytes as they are read, and reports them with the stage being built. */
export class ProgressCounter {
  private stage: BuildProgress['stage'] = 'vision';
  private tensorsRead = 0;
  private bytesRead = 0;

  constructor(
    private readonly plan: ReadPlan,
    private readonly onProgress: ((p: BuildProgress) => void) | undefined,
  ) {}

  enter(stage: BuildProgress['stage']): void {
    this.stage = stage;
    this.report();
  }

  /** `source`, counting what is read from it. */
  counting(source: WeightSource): WeightSource {
    return {
      description: source.description,
      shape: (n) => source.shape(n),
      read: async (n) => {
        const data = await source.read(n);
        this.tensorsRead++;
        this.bytesRead += data.byteLength;
        this.report();
        return data;
      },
      close: () => source.close(),
    };
  }

  private report(): void {
    const { tensorsTotal, bytesTotal } = this.plan;
    this.onProgress?.({ stage: this.stage, tensorsRead: this.tensorsRead, tensorsTotal, bytesRead: this.bytesRead, bytesTotal });
  }
}
