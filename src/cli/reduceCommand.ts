/**
 * `prumerge reduce`: runs a reduction (PruMerge, PruMerge+, top-k, the selections, the baselines)
 * on vision-tower taps from a JSON file (or synthetic CLIP-like taps) and prints what was kept,
 * merged and produced.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { reduceVisualTokens, Reduction } from '../pipeline/reduce/prumerge';
import { formatReduceMode, parseReduceMode, REDUCE_MODE_SYNTAX } from '../shared/reduceMode';
import { syntheticTaps } from '../pipeline/reduce/syntheticTaps';
import { ClsTaps } from '../pipeline/reduce/visionTaps';
import { CliError } from './cliError';
import { gridPicture } from './gridPicture';
import { readStdin, wholeNumber, writeOut } from './io';
import { parseTapsJson, type SelectionFields } from './tapsFile';
import { isSelection, readsProjectedRows, selectVisualTokens, type SelectionMode } from '../pipeline/reduce/selectTokens';
import { relevanceOver } from '../pipeline/reduce/diversity';

export const REDUCE_USAGE = `usage: prumerge reduce (--taps FILE.json | --synthetic) [--reduce MODE] [--json]

Reduces the vision tower's N patch tokens to M visual tokens.

  --taps FILE     {"hidden", "q", "k"}: each [N+1][C] numbers, row 0 the CLS token; hidden =
                  the penultimate layer's hidden states, q / k = the last layer's q_proj / k_proj
                  outputs. For the selections also "projected" [N][D] (the projector's rows:
                  cdpruner, divprune), "question" [M][D] (the question tokens' embedding rows:
                  cdpruner) and "score" [N] (vispruner's attention, else the CLS row's).
                  "-" reads standard input.
  --synthetic     CLIP-like synthetic taps instead (--grid 24, --width 1024, --seed 1)
  --reduce MODE   ${REDUCE_MODE_SYNTAX} (default prumerge)
  --json          one JSON object: mode, n, kept (ascending for the selections), spatial,
                  clusters, attention, features; "order" of choice for the greedy ones`;

export async function runReduce(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      taps: { type: 'string' },
      synthetic: { type: 'boolean', default: false },
      grid: { type: 'string', default: '24' },
      width: { type: 'string', default: '1024' },
      seed: { type: 'string', default: '1' },
      reduce: { type: 'string', default: 'prumerge' },
      json: { type: 'boolean', default: false },
    },
  });
  const mode = parseReduceMode(values.reduce);
  if ((values.taps === undefined) === !values.synthetic) {
    throw new CliError('give exactly one of --taps FILE.json and --synthetic (see prumerge reduce --help)');
  }

  let taps: ClsTaps;
  let source: string;
  let fields: SelectionFields = {};
  if (values.taps !== undefined) {
    source = values.taps === '-' ? 'standard input' : values.taps;
    const parsed = parseTapsJson(await readTaps(values.taps), source);
    ({ selection: fields, ...taps } = parsed);
  } else {
    const grid = wholeNumber(values.grid, '--grid', 1, 64);
    const width = wholeNumber(values.width, '--width', 1, 8192);
    const seed = wholeNumber(values.seed, '--seed', 0, 2 ** 32 - 1);
    taps = syntheticTaps({ grid, width, seed });
    source = `synthetic CLIP-like taps (grid ${grid} x ${grid}, C = ${width}, seed ${seed}), not from an image`;
  }

  const started = process.hrtime.bigint();
  const r = isSelection(mode) ? select(taps, mode, fields) : reduceVisualTokens(taps, mode);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await writeOut(values.json ? reductionJson(r) : summary(r, source, ms));
}

function select(taps: ClsTaps, mode: SelectionMode, fields: SelectionFields): Reduction {
  const n = taps.tokens - 1;
  const grid = Math.round(Math.sqrt(n));
  if (mode.kind === 'pool' && grid * grid !== n) throw new CliError(`pool:K needs a square grid of patches; the taps hold ${n}`);
  if (readsProjectedRows(mode) && !fields.projected)
    throw new CliError(`${mode.kind} chooses among the projector's rows: give "projected" [N][D] in the taps file`);
  const p = fields.projected;
  const relevant = mode.kind === 'cdpruner' && p && fields.question ? relevanceOver([p.rows], p.width, fields.question)[0] : undefined;
  return selectVisualTokens(taps, mode, grid, undefined, {
    ...(p ? { projected: p.rows, projectedWidth: p.width } : {}),
    ...(relevant ? { relevance: relevant } : {}),
    ...(fields.score ? { score: fields.score } : {}),
  });
}

async function readTaps(path: string): Promise<string> {
  if (path === '-') return readStdin();
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`${path} does not exist`);
    if (code === 'EISDIR') throw new CliError(`${path} is a folder, not a taps JSON file`);
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** The JSON contract of `reduce --json` (field names are used by tests outside this repository). */
export function reductionJson(r: Reduction): string {
  const features: number[][] = [];
  for (let row = 0; row < r.rows; row++) features.push(Array.from(r.features.subarray(row * r.width, (row + 1) * r.width)));
  return `${JSON.stringify({
    mode: formatReduceMode(r.mode),
    n: r.patches,
    kept: Array.from(r.kept),
    spatial: Array.from(r.spatial),
    clusters: r.clusters.map((c) => Array.from(c)),
    attention: Array.from(r.attention),
    features,
    width: r.width,
    remainder: r.remainder,
    outliers: r.outliers,
    ...(r.order ? { order: Array.from(r.order) } : {}),
  })}\n`;
}

function summary(r: Reduction, source: string, ms: number): string {
  const lines = [`taps: ${source}`];
  const n = r.patches;
  const fromAttention = r.kept.length - r.spatial.length;
  const parts = [isSelection(r.mode) ? `${r.kept.length} kept by ${r.mode.kind}` : `${fromAttention} kept by CLS attention`];
  if (r.spatial.length > 0) parts.push(`${r.spatial.length} by the spatial supplement`);
  if (r.remainder) parts.push('1 remainder token');
  const ratio = n / r.rows;
  lines.push(
    `${formatReduceMode(r.mode)}: ${n} patch tokens -> ${r.rows} visual tokens (${parts.join(' + ')}), ${ratio >= 1.05 ? `${ratio.toFixed(1)}x fewer` : 'no reduction'}, in ${ms.toFixed(1)} ms`,
  );
  const o = r.outliers;
  lines.push(
    `CLS attention: ${o.count} IQR outliers above ${o.bound.toPrecision(4)} (q1 ${o.q1.toPrecision(4)}, q3 ${o.q3.toPrecision(4)})`,
  );
  const picture = r.mode.kind === 'none' ? undefined : gridPicture(n, r.kept, r.spatial);
  if (picture) lines.push('', '# kept for attention   + spatial supplement   . merged away', picture);
  return `${lines.join('\n')}\n`;
}
