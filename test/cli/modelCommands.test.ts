/**
 * `prumerge` over a model: preprocess, ask, inspect, bench, on the demo models, as users and
 * outside tests run it (bin/prumerge.js over the built bundle; `npm test` builds first).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { demoModelDir } from '../../src/pipeline/engine/engine';
import { defaultThreads } from '../../src/pipeline/runtime/threads';
import { assertBadInput, prumerge, ROOT, Run, tmp } from '../helpers/cli';

before(() => {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
});

describe('prumerge preprocess', () => {
  it('writes the model input as a PNG and reports the geometry', async () => {
    const image = join(tmp, 'wide.png');
    await sharp({ create: { width: 300, height: 150, channels: 3, background: '#3366cc' } })
      .png()
      .toFile(image);
    const out = join(tmp, 'model-input.png');
    const r = prumerge(['preprocess', image, '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.geometry.padded, { width: 300, height: 300, left: 0, top: 75 });
    assert.equal(report.format, 'png');
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height], [672, 672]);
  });

  it('rejects a text file named .png with one line and exit 2', () => {
    const fake = join(tmp, 'notes.png');
    writeFileSync(fake, 'just text');
    assertBadInput(prumerge(['preprocess', fake]), /notes\.png is not an image in a supported format/);
  });
});

describe('prumerge itself', () => {
  it('lists its commands with --help', () => {
    const r = prumerge(['--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /reduce/);
    assert.match(r.stdout, /preprocess/);
  });
  it('rejects an unknown command with exit 2', () => {
    const r = prumerge(['frobnicate']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
  });
});

describe('prumerge ask / inspect / bench on the demo model', () => {
  const sample = join(ROOT, 'media', 'samples', 'pipeline-diagram.svg');

  it('ask --json keeps the contract fields and is greedy-reproducible', () => {
    const run = (): Run => prumerge(['ask', sample, 'What is in the picture?', '--max-new-tokens', '6', '--reduce', 'prumerge+', '--json']);
    const a = run();
    assert.equal(a.status, 0, a.stderr);
    const out = JSON.parse(a.stdout);
    for (const key of ['answer', 'inputIds', 'tokens', 'visual', 'timings', 'ep']) assert.ok(key in out, key);
    for (const key of ['preprocessMs', 'visionMs', 'reduceMs', 'projectorMs', 'prefillMs', 'ttftMs', 'decodeTokensPerSecond'])
      assert.equal(typeof out.timings[key], 'number', key);
    assert.equal(out.visual.total, 576);
    assert.equal(out.inputIds.filter((id: number) => id === 32000).length, out.visual.kept);
    assert.equal(out.ep, 'cpu');
    assert.equal(out.threads, defaultThreads(), 'one thread per physical core unless told');
    assert.match(a.stderr, /random weights/);
    assert.deepEqual(JSON.parse(run().stdout).tokens, out.tokens);
  });

  it('ask takes several images before the question, with counts per image and a note for a model trained on one', () => {
    const r = prumerge(['ask', sample, sample, 'What changed?', '--max-new-tokens', '2', '--reduce', 'topk:8', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(
      out.visual.images.map((v: { total: number; kept: number }) => [v.total, v.kept]),
      [
        [576, 9],
        [576, 9],
      ],
    );
    assert.equal(out.inputIds.filter((id: number) => id === 32000).length, 18);
    const text = prumerge(['ask', sample, sample, 'What changed?', '--max-new-tokens', '2', '--reduce', 'topk:8']);
    assert.match(text.stderr, /\[18 of 1152 visual tokens \(image 1: 9 of 576, image 2: 9 of 576\)/);
    assert.match(text.stderr, /note: [^\n]+ was trained on one image per conversation/);
    assertBadInput(prumerge(['ask', sample, sample, sample, sample, sample, 'Q']), /give at most 4 images in one question, got 5/);
  });

  it('ask and inspect take --threads, and say how many they used', () => {
    const a = prumerge(['ask', sample, 'What is this?', '--max-new-tokens', '2', '--threads', '1', '--json']);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(JSON.parse(a.stdout).threads, 1);
    const i = prumerge(['inspect', sample, '--threads', '1']);
    assert.equal(i.status, 0, i.stderr);
    assert.match(i.stdout, /\(cpu, 1 threads\)/);
    assertBadInput(prumerge(['ask', sample, 'Hi', '--threads', 'many']), /--threads must be a whole number from 0 to 256, got "many"/);
  });

  it('ask streams text and a stats line, and answers follow-ups from the cache', () => {
    const r = prumerge(['ask', sample, 'What is this?', '--max-new-tokens', '4', '--follow-up', 'Why?']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /> Why\?/);
    assert.match(r.stderr, /of 576 visual tokens .*first token \d+ ms/);
    assert.match(r.stderr, /prompt tokens from the cache/);
  });

  it('ask with cdpruner: a follow-up chooses its own patches, reading the conversation again rather than from the cache', () => {
    const r = prumerge([
      'ask',
      sample,
      'What is this?',
      '--reduce',
      'cdpruner:8',
      '--max-new-tokens',
      '3',
      '--follow-up',
      'Where?',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const [follow] = out.followUps;
    assert.equal(follow.visual.kept, 8);
    assert.equal(follow.reusedTokens, 0);
    // the first exchange is in its prompt, as text: longer than the first question's prompt
    assert.ok(follow.promptTokens > out.promptTokens, `${follow.promptTokens} against ${out.promptTokens}`);
  });

  it('inspect writes a heatmap PNG and reports the kept patches', async () => {
    const out = join(tmp, 'heatmap.png');
    const r = prumerge(['inspect', sample, '--reduce', 'prumerge', '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.n, 576);
    assert.equal(report.rows, report.kept.length + 1);
    const meta = await sharp(out).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(meta.width! >= 960);
  });

  it('inspect --question weighs cdpruner by it and reports the relevance; other readings refuse it', () => {
    const r = prumerge(['inspect', sample, '--reduce', 'cdpruner:8', '--question', 'Which box merges?', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.kept.length, 8);
    assert.equal(report.question, 'Which box merges?');
    assert.equal(report.relevance.length, 576);
    // scaled 0..1 over the image: (x - min) / (max - min + 1e-6)
    assert.equal(Math.min(...report.relevance), 0);
    assert.ok(Math.max(...report.relevance) > 0.9999);
    const text = prumerge(['inspect', sample, '--reduce', 'cdpruner:8', '--question', 'Which box merges?']);
    assert.match(
      text.stdout,
      /cdpruner:8 keeps 8 of 576 visual tokens, 72\.0x fewer \(chosen for diversity and relevance to "Which box merges\?"/,
    );
    assertBadInput(
      prumerge(['inspect', sample, '--question', 'Why?']),
      /--question weighs the patches for cdpruner only: prumerge does not read/,
    );
  });

  it('ask rejects an empty question and a missing model folder with one line', () => {
    assertBadInput(prumerge(['ask', sample, '   ']), /question is empty/);
    assertBadInput(prumerge(['ask', sample, 'hi', '--model', tmp]), /not a model folder/);
    assertBadInput(prumerge(['ask', join(tmp, 'none.png'), 'hi']), /does not exist/);
    assertBadInput(prumerge(['ask', sample, 'hi', '--detail', 'high']), /unknown detail "high": expected auto, medium or low/);
    // the demo model is LLaVA-1.5: one grid, so no medium (fewer tiles) and no low-detail reading
    assertBadInput(prumerge(['ask', sample, 'hi', '--detail', 'medium']), /reads one crop: --detail medium is for models with tiles/);
    assertBadInput(
      prumerge(['inspect', sample, '--detail', 'low']),
      /has no low-detail reading: --detail low is for LLaVA-OneVision models/,
    );
  });

  it('ask refuses a model folder with a file linked from outside it, and one with a missing file, with one line', () => {
    const linked = join(tmp, 'linked-model');
    cpSync(demoModelDir(), linked, { recursive: true });
    rmSync(join(linked, 'projector.onnx.data'));
    symlinkSync(join(demoModelDir(), 'projector.onnx.data'), join(linked, 'projector.onnx.data'));
    assertBadInput(
      prumerge(['ask', sample, 'hi', '--model', linked]),
      /projector\.onnx\.data in the model folder links to .*, outside it: the folder was refused/,
    );
    rmSync(join(linked, 'projector.onnx.data'));
    assertBadInput(
      prumerge(['ask', sample, 'hi', '--model', linked]),
      /is missing projector\.onnx\.data: the build did not finish or files were removed; rebuild the model/,
    );
  });

  it('bench --json reports every mode and the ratios', () => {
    const r = prumerge(['bench', '--reps', '1', '--tokens', '2', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.ok('model' in out && out.ep === 'cpu');
    for (const mode of ['none', 'prumerge', 'prumerge+', 'topk:32']) {
      for (const key of ['visualTokens', 'ttftMs', 'decodeTokensPerSecond', 'peakRssMb'])
        assert.equal(typeof out.runs[mode][key], 'number', `${mode}.${key}`);
    }
    assert.equal(out.runs['none'].visualTokens, 576);
    assert.equal(out.runs['topk:32'].visualTokens, 33);
    for (const mode of ['none', 'topk:32']) {
      const run = out.runs[mode];
      // the prompt holds the visual tokens and a few dozen of template and question
      assert.ok(run.promptTokens > run.visualTokens && run.promptTokens < run.visualTokens + 64, `${mode}: ${run.promptTokens}`);
      assert.ok(run.prefillTokensPerSecond > 0);
      assert.equal(run.subImages, 1, 'LLaVA-1.5 runs the tower on one image');
    }
    for (const mode of ['prumerge', 'prumerge+', 'topk:32']) assert.ok(out.ratios[mode] > 0, mode);
  });

  it('bench --reduce times none and the readings it lists', () => {
    const r = prumerge(['bench', '--reps', '1', '--tokens', '1', '--reduce', 'cdpruner:16,pool:2', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out.runs), ['none', 'cdpruner:16', 'pool:2']);
    // the demo's 24 x 24 patches: 16 chosen; 12 x 12 windows
    assert.equal(out.runs['cdpruner:16'].visualTokens, 16);
    assert.equal(out.runs['pool:2'].visualTokens, 144);
    assert.deepEqual(Object.keys(out.ratios), ['cdpruner:16', 'pool:2']);
  });

  it('synth refuses a block size it does not offer, or one without int4, with one line', () => {
    const out = join(tmp, 'never-built');
    assertBadInput(
      prumerge(['synth', '--shape', 'tiny', '--out', out, '--dtype', 'int4', '--block-size', '256']),
      /--block-size must be one of 32, 64, 128, got "256"/,
    );
    assertBadInput(prumerge(['synth', '--shape', 'tiny', '--out', out, '--block-size', '64']), /--block-size goes with --dtype int4/);
    assert.ok(!existsSync(out));
  });

  it('bench refuses a KV cache mode it does not know with one line', () => {
    assertBadInput(prumerge(['bench', '--kv-cache', 'paged']), /--kv-cache must be in-place or growing, got "paged"/);
  });

  it('bench --context times decoding after prompts of about 70 and 600 positions (the demo model takes 2048)', () => {
    const r = prumerge(['bench', '--context', '--reps', '1', '--tokens', '2', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { context: { target: number; promptTokens: number; decodeTokensPerSecond: number }[] };
    assert.deepEqual(
      out.context.map((c) => c.target),
      [70, 600],
    );
    for (const c of out.context) {
      assert.ok(Math.abs(c.promptTokens - c.target) <= 15, `${c.promptTokens} positions for ${c.target}`);
      assert.ok(c.decodeTokensPerSecond > 0);
    }
  });

  it('bench names the threads and the CPU it ran with', () => {
    const r = prumerge(['bench', '--reps', '1', '--tokens', '2', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { threads: number; cpu: { model: string; logical: number; flags: string[] } };
    assert.equal(out.threads, defaultThreads());
    assert.equal(out.cpu.logical, availableParallelism());
    assert.ok(Array.isArray(out.cpu.flags) && out.cpu.model.length > 0);
  });
});

describe('prumerge on a LLaVA-NeXT model (demo-next: 336 px tiles)', () => {
  const screenshot = join(ROOT, 'media', 'samples', 'editor-screenshot.png');
  let model: string;
  before(() => {
    model = join(tmp, 'demo-next');
    const r = prumerge(['synth', '--shape', 'demo-next', '--out', model]);
    assert.equal(r.status, 0, r.stderr);
  });

  it('ask --json reports the tokens without reduction, the rows the LLM got and each sub-image', () => {
    const r = prumerge([
      'ask',
      screenshot,
      'What does the terminal say?',
      '--model',
      model,
      '--max-new-tokens',
      '3',
      '--reduce',
      'prumerge',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const { visual, inputIds } = JSON.parse(r.stdout) as {
      visual: { total: number; kept: number; indices: number[]; subImages: { kind: string; row: number; col: number; kept: number[] }[] };
      inputIds: number[];
    };
    assert.equal(visual.total, 2340);
    assert.equal(inputIds.filter((id) => id === 32000).length, visual.kept);
    assert.deepEqual(
      visual.subImages.map((s) => [s.kind, s.row, s.col]),
      [
        ['overview', 0, 0],
        ['tile', 0, 0],
        ['tile', 0, 1],
        ['tile', 1, 0],
        ['tile', 1, 1],
      ],
    );
    const patches = visual.subImages.reduce((n, s) => n + s.kept.length, 0);
    assert.deepEqual(visual.indices.length, patches);
    // each sub-image adds its kept patches and at most one remainder row
    assert.ok(visual.kept >= patches && visual.kept <= patches + 5, `${visual.kept} rows for ${patches} patches`);
  });

  it('ask with every token fills a 2340-token image and shows how far the prompt has got', () => {
    const r = prumerge(['ask', screenshot, 'What is this?', '--model', model, '--max-new-tokens', '2', '--reduce', 'none']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /Reading the prompt: 2,3\d\d of 2,3\d\d tokens/);
    assert.match(r.stderr, /\[2340 of 2340 visual tokens/);
  });

  it('inspect and preprocess show the overview and the tiles', async () => {
    const i = prumerge(['inspect', screenshot, '--model', model, '--reduce', 'prumerge+', '--json']);
    assert.equal(i.status, 0, i.stderr);
    const report = JSON.parse(i.stdout) as { total: number; subImages: { kind: string; valid: number[] }[] };
    assert.equal(report.total, 2340);
    assert.deepEqual(
      report.subImages.map((s) => s.valid.length),
      [576, 24 * 18, 24 * 18, 24 * 18, 24 * 18],
    );
    const config = join(tmp, 'next-preprocessor.json');
    writeFileSync(
      config,
      JSON.stringify({
        image_grid_pinpoints: [
          [336, 672],
          [672, 336],
          [672, 672],
          [1008, 336],
          [336, 1008],
        ],
        crop_size: { height: 336, width: 336 },
        size: { shortest_edge: 336 },
      }),
    );
    const out = join(tmp, 'next-input.png');
    const p = prumerge(['preprocess', screenshot, '--config', config, '--out', out, '--json']);
    assert.equal(p.status, 0, p.stderr);
    const layout = (JSON.parse(p.stdout) as { layout: { tokens: number; best: unknown; resized: unknown } }).layout;
    assert.equal(layout.tokens, 2340);
    assert.deepEqual(
      [layout.best, layout.resized],
      [
        { width: 672, height: 672 },
        { width: 672, height: 504 },
      ],
    );
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height], [336 * 3 + 8, 672]);
  });

  it('bench runs the vision tower on every sub-image of the screenshot', () => {
    const r = prumerge(['bench', '--model', model, '--reps', '1', '--tokens', '2', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const runs = (
      JSON.parse(r.stdout) as {
        runs: Record<string, { visualTokens: number; subImages: number; visionMs: number; visionMsPerSubImage: number }>;
      }
    ).runs;
    assert.equal(runs['none']!.visualTokens, 2340);
    assert.equal(runs['topk:32']!.subImages, 5);
    assert.ok(Math.abs(runs['topk:32']!.visionMsPerSubImage * 5 - runs['topk:32']!.visionMs) < 1e-6);
    assert.ok(runs['topk:32']!.visualTokens <= 5 * 33);
  });

  it("bench --context sizes its prompts by the image's own tokens (2340 here, not 24 x 24)", () => {
    const r = prumerge(['bench', '--model', model, '--image', screenshot, '--context', '--reps', '1', '--tokens', '2', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { context: { target: number; promptTokens: number }[] };
    assert.ok(out.context.length >= 2);
    for (const c of out.context) assert.ok(Math.abs(c.promptTokens - c.target) <= 15, `${c.promptTokens} positions for ${c.target}`);
  });
});
