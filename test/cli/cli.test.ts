/**
 * The `prumerge` command as users and outside tests run it: bin/prumerge.js over the built bundle
 * (`npm test` builds first).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { SeededRandom } from '../../src/common/random';
import { demoModelDir } from '../../src/pipeline/engine/engine';
import { defaultThreads } from '../../src/pipeline/runtime/threads';
import { Matrix, referencePruMerge } from '../reference/prumergeReference';

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'prumerge.js');
const tmp = mkdtempSync(join(tmpdir(), 'prumerge-cli-'));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function prumerge(args: string[], input?: string): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, input, encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function randomRows(rng: SeededRandom, rows: number, cols: number, scale = 1): Matrix {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.fround(rng.normal() * scale)));
}

function writeTaps(name: string, taps: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, JSON.stringify(taps));
  return path;
}

/** A bad-input run: exit 2 and exactly one line on stderr that matches, nothing on stdout. */
function assertBadInput(r: Run, pattern: RegExp): void {
  assert.equal(r.status, 2, `exit status, stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
}

before(() => {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
});

describe('prumerge reduce --json', () => {
  const rng = new SeededRandom(31);
  const tokens = 145; // a 12 x 12 grid
  const width = 24;
  const taps = { hidden: randomRows(rng, tokens, width), q: randomRows(rng, tokens, width), k: randomRows(rng, tokens, width, 3) };
  const file = writeTaps('random.json', taps);

  for (const mode of ['prumerge', 'prumerge+', 'topk:16'] as const) {
    it(`matches the float64 reference for ${mode}`, () => {
      const r = prumerge(['reduce', '--taps', file, '--reduce', mode, '--json']);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      const ref = referencePruMerge(taps.hidden, taps.q, taps.k, mode === 'topk:16' ? { topk: 16 } : mode);
      assert.equal(out.mode, mode);
      assert.equal(out.n, 144);
      assert.deepEqual(out.kept, ref.kept);
      assert.deepEqual(out.spatial, ref.spatial);
      assert.deepEqual(out.clusters, ref.clusters);
      assert.equal(out.attention.length, 144);
      out.attention.forEach((a: number, i: number) => assert.ok(Math.abs(a - ref.attention[i]!) < 1e-7));
      assert.equal(out.features.length, ref.features.length);
      const scale = Math.max(...ref.features.map((row) => Math.max(...row.map(Math.abs))));
      out.features.forEach((row: number[], i: number) => {
        assert.equal(row.length, width);
        row.forEach((v, c) => assert.ok(Math.abs(v - ref.features[i]![c]!) < 1e-4 * scale, `feature [${i}][${c}]`));
      });
    });
  }

  it('passes all tokens through with --reduce none', () => {
    const out = JSON.parse(prumerge(['reduce', '--taps', file, '--reduce', 'none', '--json']).stdout);
    assert.deepEqual(
      out.kept,
      Array.from({ length: 144 }, (_, i) => i),
    );
    assert.deepEqual(out.features, taps.hidden.slice(1));
    assert.deepEqual(out.spatial, []);
  });

  it('defaults to prumerge and reads standard input with --taps -', () => {
    const r = prumerge(['reduce', '--taps', '-', '--json'], JSON.stringify(taps));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).mode, 'prumerge');
  });

  it('handles a single patch (N + 1 = 2)', () => {
    const one = writeTaps('one.json', {
      hidden: [
        [1, 2],
        [3, 4],
      ],
      q: [
        [1, 0],
        [0, 1],
      ],
      k: [
        [0, 1],
        [1, 0],
      ],
    });
    const out = JSON.parse(prumerge(['reduce', '--taps', one, '--reduce', 'prumerge+', '--json']).stdout);
    assert.deepEqual(out.kept, [0]);
    assert.deepEqual(out.clusters, [[]]);
    assert.deepEqual(out.features, [[3, 4]]);
  });

  it('prints a readable summary with the kept patches on the grid', () => {
    const r = prumerge(['reduce', '--taps', file, '--reduce', 'prumerge+']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /prumerge\+: 144 patch tokens -> \d+ visual tokens/);
    const grid = r.stdout.split('\n').filter((l) => /^[#+.](?: [#+.]){11}$/.test(l));
    assert.equal(grid.length, 12);
  });

  it('runs on synthetic CLIP-like taps', () => {
    const r = prumerge(['reduce', '--synthetic', '--width', '64', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.n, 576);
    assert.equal(out.features.length, out.kept.length + 1);
  });
});

describe('prumerge reduce rejects bad input with one line and exit 2', () => {
  const ok = {
    hidden: [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
    q: [
      [1, 0],
      [0, 1],
      [1, 1],
    ],
    k: [
      [0, 1],
      [1, 0],
      [1, 1],
    ],
  };
  const cases: [string, unknown, RegExp][] = [
    ['a missing field', { hidden: ok.hidden, q: ok.q }, /lacks "k"/],
    ['ragged rows', { ...ok, q: [[1, 0], [0], [1, 1]] }, /q\[1\] has 1 numbers/],
    ['a single row (N + 1 < 2)', { hidden: [[1, 2]], q: [[1, 2]], k: [[1, 2]] }, /need N\+1 >= 2/],
    [
      'a width mismatch',
      {
        ...ok,
        k: [
          [0, 1, 2],
          [1, 0, 2],
          [1, 1, 2],
        ],
      },
      /k\[0\] has 3 numbers but hidden\[0\] has 2/,
    ],
    [
      'a row-count mismatch',
      {
        ...ok,
        q: [
          [1, 0],
          [0, 1],
        ],
      },
      /"q" has 2 rows but "hidden" has 3/,
    ],
    [
      'a string',
      {
        ...ok,
        hidden: [
          [1, 2],
          [3, 'x'],
          [5, 6],
        ],
      },
      /hidden\[1\]\[1\] is "x"/,
    ],
    [
      'null',
      {
        ...ok,
        hidden: [
          [1, 2],
          [3, null],
          [5, 6],
        ],
      },
      /hidden\[1\]\[1\] is null/,
    ],
    ['not an object', [1, 2, 3], /must hold an object/],
  ];
  for (const [what, taps, pattern] of cases) {
    it(what, () => assertBadInput(prumerge(['reduce', '--taps', writeTaps('bad.json', taps), '--json']), pattern));
  }

  it('a non-finite number (1e400)', () => {
    const path = join(tmp, 'inf.json');
    writeFileSync(path, '{"hidden": [[1, 2], [3, 1e400]], "q": [[1, 0], [0, 1]], "k": [[0, 1], [1, 0]]}');
    assertBadInput(prumerge(['reduce', '--taps', path]), /hidden\[1\]\[1\] is .*not a finite/);
  });
  it('invalid JSON', () => {
    const path = join(tmp, 'broken.json');
    writeFileSync(path, '{"hidden": [[1, 2]');
    assertBadInput(prumerge(['reduce', '--taps', path]), /is not valid JSON/);
  });
  it('a missing file', () => assertBadInput(prumerge(['reduce', '--taps', join(tmp, 'none.json')]), /does not exist/));
  it('an unknown mode', () => assertBadInput(prumerge(['reduce', '--synthetic', '--reduce', 'topk:0']), /unknown reduction "topk:0"/));
  it('neither --taps nor --synthetic', () => assertBadInput(prumerge(['reduce']), /exactly one of --taps/));
  it('an unknown option', () => assertBadInput(prumerge(['reduce', '--synthetic', '--fast']), /--fast/));
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
    for (const key of ['ttftNoneOverPrumerge', 'ttftNoneOverPrumergePlus', 'ttftNoneOverTopk32']) assert.ok(out.ratios[key] > 0, key);
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
