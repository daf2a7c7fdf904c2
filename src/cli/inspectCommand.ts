/** `prumerge inspect`: vision tower and reduction only, and the token heatmap as a PNG. */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Engine } from '../pipeline/engine/engine';
import { renderHeatmap } from '../pipeline/image/heatmap';
import { heatmapFigures } from '../shared/heatmapLayout';
import { parseDetail, parseReduceMode, REDUCE_MODE_SYNTAX } from '../shared/reduceMode';
import { AUTO_REDUCTION, readingSetting } from '../shared/reductionChoices';
import { CliError } from './cliError';
import { gridPicture } from './gridPicture';
import { writeOut } from './io';
import { DETAIL_HELP, executionProvider, MODEL_OPTIONS, modelDir, RANDOM_WEIGHTS_NOTICE, THREADS_HELP, threadCount } from './modelOption';

export const INSPECT_USAGE = `usage: prumerge inspect IMAGE [--model DIR] [--reduce MODE] [--question TEXT] [--detail auto|medium|low] [--out heatmap.png] [--ep EP] [--threads N] [--json]

Runs the vision tower and the reduction on IMAGE and reports which of the patches were kept.

  --reduce MODE     auto | ${REDUCE_MODE_SYNTAX} (default auto: the model's own, as ask)
  --question TEXT   cdpruner: weigh the patches by this question, as an answer to it does (the colour is then each
                    patch's relevance to it)
  ${DETAIL_HELP.replace('--detail auto|medium|low  ', '--detail auto|medium|low ')}
  --out FILE.png    the heatmap: the image with the patch grid, each patch's score as colour (CLS attention, or attention received), kept
                    patches outlined (dashed: PruMerge+'s spatial supplement)
  --ep EP           auto (default), webgpu, cuda, dml, coreml, cpu
  ${THREADS_HELP.replace('--threads N          ', '--threads N       ')}
  --json            mode, n, kept, spatial, clusters, attention, geometry, timings (cdpruner with --question: relevance)`;

export async function runInspect(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...MODEL_OPTIONS,
      reduce: { type: 'string', default: AUTO_REDUCTION },
      question: { type: 'string' },
      detail: { type: 'string', default: 'auto' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new CliError('give one IMAGE to inspect (see prumerge inspect --help)');
  const image = positionals[0]!;
  if (values.reduce !== AUTO_REDUCTION) parseReduceMode(values.reduce); // before the model loads
  const detail = parseDetail(values.detail);
  const engine = await Engine.load(modelDir(values.model), { ep: executionProvider(values.ep), threads: threadCount(values.threads) });
  try {
    const reading = readingSetting(values.reduce, engine.manifest.vision.score);
    const mode = parseReduceMode(reading);
    if (values.question !== undefined && mode.kind !== 'cdpruner')
      throw new CliError(`--question weighs the patches for cdpruner only: ${reading} does not read the question`);
    const r = await engine.inspect(image, mode, {}, detail, values.question);
    if (values.out !== undefined) {
      const png = await renderHeatmap(image, r);
      try {
        await writeFile(values.out, png);
      } catch (e) {
        throw new CliError(`cannot write ${values.out}: ${(e as Error).message}`);
      }
    }
    const t = r.timings;
    if (engine.manifest.randomWeights) process.stderr.write(`${RANDOM_WEIGHTS_NOTICE}\n`);
    if (values.json) {
      await writeOut(`${JSON.stringify({ ...r, out: values.out ?? null })}\n`);
      return;
    }
    const spatial = (r.subImages ?? [r]).reduce((n, s) => n + s.spatial.length, 0);
    const lines = [
      `${image}: ${heatmapFigures(r).headline}` + (spatial ? `; ${spatial} patches from the spatial supplement` : ''),
      `preprocess ${t.preprocessMs.toFixed(0)} ms, vision ${t.visionMs.toFixed(0)} ms, reduce ${t.reduceMs.toFixed(1)} ms (${engine.ep}, ${engine.threads} threads)`,
    ];
    if (r.mode !== 'none') {
      for (const s of r.subImages ?? [r]) {
        const label = !r.subImages ? '' : 'kind' in s && s.kind === 'tile' ? `tile ${s.row + 1}, ${s.col + 1}:\n` : 'overview:\n';
        lines.push('', label + (gridPicture(r.grid * r.grid, s.kept, s.spatial) ?? ''));
      }
    }
    if (values.out !== undefined) lines.push('', `wrote ${values.out}`);
    await writeOut(`${lines.join('\n')}\n`);
  } finally {
    await engine.dispose();
  }
}
