/**
 * The selections on tiled models against the float64 references: each crop's valid patches chosen
 * by test/reference/selectionReference.ts, CDPruner's relevance scaled over all the crops, the kept
 * projector rows in patch order; and the engine's answer checked against them, greedy tokens included.
 */
import assert from 'node:assert/strict';
import type { Engine } from '../../src/pipeline/engine/engine';
import { parseReduceMode } from '../../src/shared/reduceMode';
import { cdprunerReference, divpruneReference, Matrix, relevanceReference, visprunerReference } from '../reference/selectionReference';
import { embedTokens } from '../reference/llavaReference';
import type { TinyCheckpoint } from './checkpoints';
import { assertReferenceTokens } from './greedy';

export const SELECTIONS = ['cdpruner:3', 'divprune:3', 'vispruner:3'] as const;
export type Selection = (typeof SELECTIONS)[number];

/** One crop as the references read it: its valid patches, their projector rows, tower features and attention. */
export interface ReferenceCrop {
  readonly valid: number[];
  readonly projected: Matrix;
  readonly features: Matrix;
  readonly score: number[];
}

/** The rows the language model reads under `mode`, and the kept patches per crop, for the question `question` (token ids). */
export function referenceSelection(
  ckpt: TinyCheckpoint,
  crops: readonly ReferenceCrop[],
  mode: Selection,
  question: number[],
): { rows: Float64Array[]; kept: number[][] } {
  const asked = embedTokens({ ...ckpt.config.text }, ckpt.weights, question).map((r) => Array.from(r));
  const relevance = relevanceReference(
    crops.map((c) => c.projected),
    asked,
  );
  const rows: Float64Array[] = [];
  const kept: number[][] = [];
  crops.forEach((c, i) => {
    const local =
      mode === 'divprune:3'
        ? divpruneReference(c.projected, 3)
        : mode === 'cdpruner:3'
          ? cdprunerReference(c.projected, relevance[i]!, 3)
          : visprunerReference(c.features, c.score, 3);
    const order = [...local].sort((a, b) => a - b);
    rows.push(...order.map((j) => Float64Array.from(c.projected[j]!)));
    kept.push(order.map((j) => c.valid[j]!));
  });
  return { rows, kept };
}

/** The engine's answer about `image` under `mode`: the reference's patches per crop, its rows' count and its greedy tokens. */
export async function assertSelection(
  subject: { readonly engine: Engine; readonly ckpt: TinyCheckpoint },
  image: string,
  mode: Selection,
  crops: (image: string) => Promise<ReferenceCrop[]>,
): Promise<void> {
  const question = 'Where is the error message?';
  const { engine, ckpt } = subject;
  const r = await engine.ask({ image, question, reduce: parseReduceMode(mode), maxNewTokens: 4 });
  const ids = engine.prompt.tokenizer.encode(question, { add_special_tokens: false }).ids;
  const ref = referenceSelection(ckpt, await crops(image), mode, ids);
  assert.deepEqual(
    r.visual.subImages!.map((x) => x.kept),
    ref.kept,
  );
  assert.equal(r.visual.kept, ref.rows.length);
  assertReferenceTokens(ckpt, engine.manifest.tokenizer.imageTokenId, r, ref.rows);
}
