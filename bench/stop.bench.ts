/**
 * How soon Stop takes effect at each stage of the pipeline: the time from the abort (pressed as
 * the stage begins) to the answer ending, beside the time the stage takes when left to run.
 * With all 576 visual tokens the prefill is the long stage; it runs in chunks of PREFILL_CHUNK
 * tokens, so Stop waits for one chunk, not the whole prompt.
 * Run: node --import tsx bench/stop.bench.ts [MODEL_DIR] [--reduce none]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ASK_STAGES, AskStage } from '../src/shared/results';
import { demoModelDir, Engine } from '../src/pipeline/engine/engine';
import { PREFILL_CHUNK } from '../src/pipeline/engine/generation';
import { parseReduceMode } from '../src/shared/reduceMode';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { reduce: { type: 'string', default: 'none' } } });
const dir = positionals[0] ?? demoModelDir();
const image = join(__dirname, '..', 'media', 'samples', 'pipeline-diagram.svg');
const ask = { image, question: 'What does this diagram show?', reduce: parseReduceMode(values.reduce), maxNewTokens: 8, fixedLength: true };

async function main(): Promise<void> {
  const engine = await Engine.load(dir, { ep: 'cpu' });
  await engine.ask(ask); // warm-up

  // each stage's own duration, uninterrupted
  const began = new Map<AskStage, number>();
  const full = await engine.ask(ask, { onStage: (s) => began.set(s, performance.now()) });
  const ended = performance.now();
  const order = [...ASK_STAGES];
  const took = (s: AskStage): number =>
    (order.indexOf(s) + 1 < order.length ? began.get(order[order.indexOf(s) + 1]!)! : ended) - began.get(s)!;

  console.log(
    `${engine.manifest.name}, ${values.reduce}: ${full.promptTokens} prompt tokens (prefill in chunks of ${PREFILL_CHUNK}), ${full.tokens.length} tokens generated`,
  );
  for (const stage of ASK_STAGES) {
    const controller = new AbortController();
    let pressed = 0;
    const r = await engine.ask(ask, {
      signal: controller.signal,
      onStage: (s) => {
        if (s !== stage) return;
        pressed = performance.now();
        controller.abort();
      },
    });
    const stopMs = performance.now() - pressed;
    console.log(
      `  Stop during ${stage.padEnd(10)} answer ended ${stopMs.toFixed(0).padStart(6)} ms later (stage takes ${took(stage).toFixed(0).padStart(6)} ms; ${r.tokens.length} tokens)`,
    );
  }
  await engine.dispose();
}

void main();
