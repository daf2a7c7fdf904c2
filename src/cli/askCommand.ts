/** `prumerge ask`: one image or several, one question (and follow-ups), the answer streamed to stdout. */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { packagePath } from '../common/packagePath';
import type { AskResult } from '../shared/results';
import { EngineClient } from '../worker/engineClient';
import { parseDetail, parseReduceMode, REDUCE_MODE_SYNTAX } from '../shared/reduceMode';
import { CliError } from './cliError';
import { wholeNumber, writeOut } from './io';
import { DETAIL_HELP, executionProvider, MODEL_OPTIONS, modelDir, RANDOM_WEIGHTS_NOTICE, THREADS_HELP, threadCount } from './modelOption';
import { ProgressBar } from './progressBar';
import { PrefillProgress, prefillText } from '../shared/prefillProgress';
import { AUTO_REDUCTION, MAX_IMAGES, readingSetting } from '../shared/reductionChoices';
import { cachedCropsText, lowResolutionNote } from '../shared/imageNotes';

export const ASK_USAGE = `usage: prumerge ask IMAGE... "QUESTION" [--follow-up "QUESTION"]... [--model DIR] [--reduce MODE]
                    [--detail auto|medium|low] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed N] [--ep EP] [--threads N]
                    [--json] [--verbose]

Answers a question about an image, or about several (up to ${MAX_IMAGES}, in the order given; each
reduced on its own), streaming the answer. Without --model it uses the built-in demo model
(random weights: meaningless answers). Each --follow-up continues the conversation from its KV cache.

  --reduce MODE        auto | ${REDUCE_MODE_SYNTAX} (default auto: prumerge for CLIP towers, divprune:32 for
                       SigLIP towers, which have no CLS token; docs/reductions.md)
  ${DETAIL_HELP}
  --max-new-tokens N   default 256
  --temperature T      0 (default) is greedy and reproducible
  --ep EP              auto (default), webgpu, cuda, dml, coreml, cpu
  ${THREADS_HELP}
  --json               one object at the end: answer, inputIds, tokens, visual, timings, ep, threads, epFallbacks
  --verbose            also print what the inference process logs (onnxruntime's and the GPU driver's own messages)`;

export async function runAsk(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...MODEL_OPTIONS,
      reduce: { type: 'string', default: AUTO_REDUCTION },
      detail: { type: 'string', default: 'auto' },
      'max-new-tokens': { type: 'string', default: '256' },
      temperature: { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
      'follow-up': { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  if (positionals.length < 2) throw new CliError('give an IMAGE (or several) and a "QUESTION" (see prumerge ask --help)');
  const images = positionals.slice(0, -1);
  const question = positionals[positionals.length - 1]!;
  if (images.length > MAX_IMAGES) throw new CliError(`give at most ${MAX_IMAGES} images in one question, got ${images.length}`);
  const image = images[0]!;
  if (!question.trim()) throw new CliError('the question is empty: type what you want to know about the image');
  // checked before the model loads; `auto` is the model's own, known once it has
  if (values.reduce !== AUTO_REDUCTION) parseReduceMode(values.reduce);
  const detail = parseDetail(values.detail);
  const maxNewTokens = wholeNumber(values['max-new-tokens'], '--max-new-tokens', 1, 8192);
  const temperature = fraction(values.temperature, '--temperature', 0, 10);
  const topP = fraction(values['top-p'], '--top-p', 0.01, 1);
  const seed = wholeNumber(values.seed, '--seed', 0, 2 ** 32 - 1);

  // the engine runs in the worker process: what native code prints (Dawn, onnxruntime) goes to
  // its stderr, which reaches the terminal only with --verbose
  const client = new EngineClient({
    workerPath: packagePath('dist', 'worker.js'),
    idleTimeoutMs: 0,
    onLog: values.verbose ? (line) => process.stderr.write(`[worker] ${line}\n`) : undefined,
  });
  try {
    const spec = { modelDir: resolve(modelDir(values.model)), ep: executionProvider(values.ep), threads: threadCount(values.threads) };
    const loaded = await client.load(spec);
    const reduce = parseReduceMode(readingSetting(values.reduce, loaded.score));
    const results: AskResult[] = [];
    const questions = [question, ...values['follow-up']];
    for (const [i, q] of questions.entries()) {
      if (!values.json && i > 0) await writeOut(`\n> ${q}\n`);
      const stream = values.json ? undefined : (delta: string): void => void process.stdout.write(delta);
      const bar = new ProgressBar();
      // long prompts only (LLaVA-NeXT without reduction): a short one is filled before a bar would say anything
      const onPrefill = values.json
        ? undefined
        : (p: PrefillProgress): void => {
            if (p.total - p.reused > LONG_PREFILL) bar.update(p.filled / p.total, prefillText(p));
          };
      const r = await client
        .ask(
          {
            ...spec,
            ...(images.length === 1 ? { image: resolve(image) } : { images: images.map((p) => resolve(p)) }),
            question: q,
            reduce,
            detail,
            maxNewTokens,
            temperature,
            topP,
            seed,
            // CDPruner chooses for each question: a follow-up chooses again and reads the conversation again, as the chat's do
            ...(i > 0 && reduce.kind === 'cdpruner'
              ? { history: results.map((r, j) => ({ question: questions[j]!, answer: r.answer })) }
              : { followUp: i > 0 }),
          },
          { onText: (delta) => (bar.done(), stream?.(delta)), onPrefill },
        )
        .finally(() => bar.done());
      results.push(r);
      if (!values.json) {
        await writeOut('\n');
        process.stderr.write(`${statsLine(r)}\n`);
        const small =
          i === 0 && images.length === 1 && r.visual.picture && lowResolutionNote(image, r.visual.picture, r.visual.picture.modelSide);
        if (small) process.stderr.write(`note: ${small}\n`);
        if (i === 0 && images.length > 1 && !loaded.severalImages)
          process.stderr.write(`note: ${loaded.name} was trained on one image per conversation: its answer about several may be poor\n`);
      }
    }
    // after the answers, so that a refused question still reads as one line
    if (loaded.ep === 'cpu' && loaded.epFallbacks.length > 0 && !values.json) {
      process.stderr.write(`note: running on the CPU; ${loaded.epFallbacks.join('; ')}\n`);
    }
    if (loaded.randomWeights) process.stderr.write(`${RANDOM_WEIGHTS_NOTICE}\n`);
    if (values.json) await writeOut(`${JSON.stringify(askJson(results, loaded.epFallbacks))}\n`);
  } finally {
    await client.dispose();
  }
}

/** Prompt positions past which `ask` shows the prefill's progress. */
const LONG_PREFILL = 512;

/** The --json object: the first answer's fields, follow-ups under `followUps`. */
function askJson(results: readonly AskResult[], epFallbacks: readonly string[]): unknown {
  const json = (r: AskResult): Record<string, unknown> => ({
    answer: r.answer,
    inputIds: r.inputIds,
    tokens: r.tokens,
    visual: r.visual,
    timings: r.timings,
    ep: r.ep,
    threads: r.threads,
    stopReason: r.stopReason,
    promptTokens: r.promptTokens,
    reusedTokens: r.reusedTokens,
  });
  const first = { ...json(results[0]!), epFallbacks };
  return results.length === 1 ? first : { ...first, followUps: results.slice(1).map(json) };
}

export function statsLine(r: AskResult): string {
  const t = r.timings;
  const reused = r.reusedTokens > 0 ? `, ${r.reusedTokens} of ${r.promptTokens} prompt tokens from the cache` : '';
  const cached = r.conversation === 'continued' ? undefined : cachedCropsText(r.visual);
  const each = r.visual.images ? ` (${r.visual.images.map((v, i) => `image ${i + 1}: ${v.kept} of ${v.total}`).join(', ')})` : '';
  return `[${r.visual.kept} of ${r.visual.total} visual tokens${each} (${(r.visual.total / r.visual.kept).toFixed(1)}x fewer), first token ${t.ttftMs.toFixed(0)} ms, ${t.decodeTokensPerSecond.toFixed(1)} tokens/s, ${r.ep}${r.ep === 'cpu' ? ` with ${r.threads} threads` : ''}, stopped: ${r.stopReason}${reused}${cached ? `, ${cached}` : ''}]`;
}

function fraction(text: string, flag: string, min: number, max: number): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < min || v > max) throw new CliError(`${flag} must be a number from ${min} to ${max}, got "${text}"`);
  return v;
}
