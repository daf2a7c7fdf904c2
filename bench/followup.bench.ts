/**
 * What a follow-up question saves: the same question asked fresh (image encoded again, the whole
 * prompt filled) against asked as a follow-up (the conversation's KV cache reused).
 * Run: node --import tsx bench/followup.bench.ts [MODEL_DIR] [--reduce prumerge]
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { demoModelDir, Engine } from '../src/pipeline/engine/engine';
import { parseReduceMode } from '../src/shared/reduceMode';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { reduce: { type: 'string', default: 'prumerge' } } });
const dir = positionals[0] ?? demoModelDir();
const image = join(__dirname, '..', 'media', 'samples', 'pipeline-diagram.svg');
const reduce = parseReduceMode(values.reduce);
async function main(): Promise<void> {
  const engine = await Engine.load(dir, { ep: 'cpu' });
  const first = { image, question: 'What does this diagram show?', reduce, maxNewTokens: 12, fixedLength: true };
  const second = { image, question: 'Which box is highlighted in green, and why?', reduce, maxNewTokens: 4, fixedLength: true };

  await engine.ask(first); // warm-up
  engine.newConversation();
  await engine.ask(first);
  const follow = await engine.ask({ ...second, followUp: true });
  engine.newConversation();
  const fresh = await engine.ask(second);
  console.log(`${engine.manifest.name}, ${values.reduce}:`);
  console.log(
    `  fresh question:  first token ${fresh.timings.ttftMs.toFixed(0)} ms (${fresh.promptTokens} prompt tokens filled, image encoded)`,
  );
  console.log(
    `  as a follow-up:  first token ${follow.timings.ttftMs.toFixed(0)} ms (${follow.promptTokens - follow.reusedTokens} of ${follow.promptTokens} prompt tokens filled, ${follow.reusedTokens} from the cache)`,
  );
  console.log(`  ratio fresh / follow-up: ${(fresh.timings.ttftMs / follow.timings.ttftMs).toFixed(1)}x`);
  await engine.dispose();
}

void main();
