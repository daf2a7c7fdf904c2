/**
 * Opens a model folder: its manifest checked, the three graphs on the best provider that works
 * (the projector and the decoder on the one the vision tower got), the embedding table, the
 * tokenizer and chat template. A part that fails releases what opened before it: a long-lived
 * worker retries loads, and each retry would otherwise keep another set of sessions.
 */
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ExecutionProvider } from '../../shared/results';
import { decoderOutputLocations } from '../kv/decoderFeeds';
import { checkExternalData } from '../runtime/externalData';
import { DECODER_IO } from '../../format/graphNames';
import { insideFolder, loadManifest, ModelManifest } from '../../format/modelManifest';
import { loadTokenizer } from '../../format/modelTokenizer';
import { openSession } from '../runtime/sessions';
import { resolveThreads } from '../runtime/threads';
import { EmbeddingTable } from '../text/embeddings';
import { PromptBuilder } from '../text/prompt';
import { EngineError, EngineOptions, KvCacheMode } from './request';

export interface OpenedModel {
  readonly dir: string;
  readonly manifest: ModelManifest;
  readonly ep: ExecutionProvider;
  /** Why `auto` did not take the providers it tried (or skipped) before `ep`. */
  readonly epFallbacks: readonly string[];
  readonly vision: ort.InferenceSession;
  readonly projector: ort.InferenceSession;
  readonly decoder: ort.InferenceSession;
  readonly table: EmbeddingTable;
  readonly prompt: PromptBuilder;
  readonly kvCache: KvCacheMode;
  /** onnxruntime's intra-op threads per graph (runtime/threads.ts). */
  readonly threads: number;
}

export async function openModel(modelDir: string, options: EngineOptions = {}): Promise<OpenedModel> {
  const dir = resolve(modelDir);
  const m = await loadManifest(dir);
  for (const graph of [m.vision.graph, m.projector.graph, m.decoder.graph]) await checkExternalData(insideFolder(dir, graph), dir, m.files);
  const threads = resolveThreads(options.threads);
  const opened: { release(): Promise<void> | void }[] = [];
  const keep = <T extends { release(): Promise<void> | void }>(x: T): T => (opened.push(x), x);
  try {
    const vision = await openSession(insideFolder(dir, m.vision.graph), options.ep ?? 'auto', threads);
    keep(vision.session);
    const projector = keep((await openSession(insideFolder(dir, m.projector.graph), vision.ep, threads)).session);
    const webgpu = { preferredOutputLocation: decoderOutputLocations(m.decoder.numLayers) };
    const decoder = keep((await openSession(insideFolder(dir, m.decoder.graph), vision.ep, threads, { webgpu })).session);
    const table = await EmbeddingTable.open(insideFolder(dir, m.embeddings.file), m.embeddings.shape[0], m.embeddings.shape[1]);
    keep({ release: () => table.close() });
    return {
      dir,
      manifest: m,
      ep: vision.ep,
      epFallbacks: vision.fallbacks,
      vision: vision.session,
      projector,
      decoder,
      table,
      prompt: await promptBuilderFor(dir, m),
      kvCache: kvCacheFor(options.kvCache, vision.ep, decoder),
      threads,
    };
  } catch (e) {
    await Promise.allSettled(opened.map((x) => x.release()));
    throw e;
  }
}

/** The tokenizer and chat template of a model folder. */
async function promptBuilderFor(dir: string, m: ModelManifest): Promise<PromptBuilder> {
  const tokenizer = await loadTokenizer(dir, m);
  return new PromptBuilder(tokenizer, m.chatTemplate, {
    bos: m.tokenizer.bosTokenId,
    eos: m.tokenizer.eosTokenId,
    image: m.tokenizer.imageTokenId,
  });
}

/** In place on the CPU for decoders built with `new.*` outputs; growing elsewhere (docs/onnxruntime-node.md). */
function kvCacheFor(asked: KvCacheMode | undefined, ep: ExecutionProvider, decoder: ort.InferenceSession): KvCacheMode {
  const appends = decoder.outputNames.includes(DECODER_IO.newKey(0));
  if (asked === 'in-place') {
    if (ep !== 'cpu') throw new EngineError(`an in-place KV cache needs the CPU provider, not ${ep}`);
    if (!appends) throw new EngineError('this model folder was built before in-place KV caches: build it again with `prumerge build`');
  }
  return asked ?? (ep === 'cpu' && appends ? 'in-place' : 'growing');
}
