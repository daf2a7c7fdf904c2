/**
 * Two screenshots in one question against one, with prumerge and the defaults a user gets (the
 * vision cache off, so that every crop is read): first token and visual tokens, medians of REPS.
 * Run: node --import tsx bench/several-images.bench.ts MODEL_DIR [--reps N]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { cpuLine } from '../src/cli/benchCommand';
import { median } from '../src/cli/contextBench';
import { demoModelDir, Engine } from '../src/pipeline/engine/engine';
import type { AskRequest } from '../src/pipeline/engine/request';
import { parseReduceMode } from '../src/shared/reduceMode';
import type { AskResult } from '../src/shared/results';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { reps: { type: 'string', default: '3' } } });
const dir = positionals[0] ?? demoModelDir();
const reps = Number(values.reps);
const SCREENSHOT = join(__dirname, '..', 'media', 'samples', 'editor-screenshot.png');

/** The screenshot with a panel painted over: "what changed?" has an answer. */
async function changedCopy(): Promise<string> {
  const out = join(mkdtempSync(join(tmpdir(), 'prumerge-bench-')), 'changed.png');
  const patch = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#c04020' } })
    .png()
    .toBuffer();
  await sharp(SCREENSHOT)
    .composite([{ input: patch, left: 600, top: 300 }])
    .png()
    .toFile(out);
  return out;
}

async function main(): Promise<void> {
  const engine = await Engine.load(dir, { ep: 'cpu', visionCacheBytes: 0 });
  const changed = await changedCopy();
  const base = {
    question: 'What changed between these screenshots?',
    reduce: parseReduceMode('prumerge'),
    maxNewTokens: 8,
    fixedLength: true,
  };
  const time = async (request: AskRequest): Promise<{ ttftMs: number; r: AskResult }> => {
    const runs: AskResult[] = [];
    await engine.ask(request); // warm-up
    for (let i = 0; i < reps; i++) runs.push(await engine.ask(request));
    return { ttftMs: median(runs.map((r) => r.timings.ttftMs)), r: runs[0]! };
  };
  const one = await time({ ...base, image: SCREENSHOT });
  const two = await time({ ...base, images: [SCREENSHOT, changed] });
  const each = two.r.visual.images?.map((v) => `${v.kept} of ${v.total}`).join(' + ') ?? '';
  console.log(`${engine.manifest.name}, prumerge, ${reps} runs after a warm-up, medians (the vision cache off):`);
  console.log(
    `  one screenshot:   first token ${one.ttftMs.toFixed(0)} ms, ${one.r.visual.kept} of ${one.r.visual.total} visual tokens, ${one.r.visual.visionRuns} crops`,
  );
  console.log(`  two screenshots:  first token ${two.ttftMs.toFixed(0)} ms, ${each} visual tokens, ${two.r.visual.visionRuns} crops`);
  console.log(`  two / one: ${(two.ttftMs / one.ttftMs).toFixed(2)}x`);
  console.log(cpuLine(engine.threads));
  await engine.dispose();
}

void main();
