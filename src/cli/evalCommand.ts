/**
 * `prumerge eval`: a JSONL set of questions about images, answered greedily with one or more
 * readings, each answer scored as the benchmark it comes from scores it (eval/scoring.ts). Results
 * are appended to a file as they come, so an interrupted run resumes where it stopped. docs/eval.md.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { messageOf } from '../common/errors';
import { packagePath } from '../common/packagePath';
import { formatReading, parseReading, REDUCE_MODE_SYNTAX } from '../shared/reduceMode';
import { EngineClient } from '../worker/engineClient';
import { CliError } from './cliError';
import { EvalItem, parseEvalSet } from './eval/evalSet';
import { evalTable, Outcome, summarise } from './eval/evalSummary';
import { choiceMatch, vqaAccuracy, yesNo } from './eval/scoring';
import { wholeNumber, writeOut } from './io';
import { executionProvider, MODEL_OPTIONS, modelDir, RANDOM_WEIGHTS_NOTICE, THREADS_HELP, threadCount } from './modelOption';
import { ProgressBar } from './progressBar';

export const EVAL_USAGE = `usage: prumerge eval SET.jsonl [--reduce LIST] [--model DIR] [--limit N] [--out FILE]
                     [--max-new-tokens N] [--ep EP] [--threads N] [--json]

Answers every question of SET.jsonl greedily with each reading and scores the answers.
Each line: {"image": PATH, "question": TEXT, "answers": [TEXT, ...], "type": "open" | "yes/no" |
"multiple choice"} (type open by default; PATH relative to the set's folder). Open answers get the
VQA accuracy, yes/no ones POPE's accuracy, precision, recall and F1, multiple choice the option
letter's exact match. A line that cannot be used, or an image that cannot be read, is reported
with its line number and the run goes on.

  --reduce LIST        readings separated by commas, each ${REDUCE_MODE_SYNTAX},
                       optionally @medium or @low (default none,prumerge)
  --limit N            the first N usable questions only
  --out FILE           where results are appended, one JSON line per answer (default SET.results.jsonl);
                       a run resumes from it, skipping what it holds for the same model and reading
  --max-new-tokens N   default 16: benchmark answers are a word or a phrase
  --ep EP              auto (default), webgpu, cuda, dml, coreml, cpu
  ${THREADS_HELP}
  --json               one object at the end instead of the table`;

export async function runEval(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...MODEL_OPTIONS,
      reduce: { type: 'string', default: 'none,prumerge' },
      limit: { type: 'string' },
      out: { type: 'string' },
      'max-new-tokens': { type: 'string', default: '16' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new CliError('give one SET.jsonl (see prumerge eval --help)');
  const setPath = resolve(positionals[0]!);
  const readings = values.reduce.split(',').map((r) => formatReading(parseReading(r)));
  if (new Set(readings).size !== readings.length) throw new CliError(`--reduce names a reading twice: ${values.reduce}`);
  const limit = values.limit === undefined ? Infinity : wholeNumber(values.limit, '--limit', 1, 1e9);
  const maxNewTokens = wholeNumber(values['max-new-tokens'], '--max-new-tokens', 1, 4096);
  const outPath = resolve(values.out ?? setPath.replace(/(\.jsonl)?$/, '.results.jsonl'));

  let text: string;
  try {
    text = await readFile(setPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ENOENT' ? `${positionals[0]} does not exist` : `cannot read ${positionals[0]}: ${messageOf(e)}`);
  }
  const { items: all, bad } = parseEvalSet(text, setPath);
  for (const b of bad) process.stderr.write(`line ${b.line}: skipped: ${b.why}\n`);
  const items = all.slice(0, limit);
  if (items.length === 0) throw new CliError(`${positionals[0]} holds no usable question`);

  const client = new EngineClient({ workerPath: packagePath('dist', 'worker.js'), idleTimeoutMs: 0 });
  try {
    const spec = { modelDir: resolve(modelDir(values.model)), ep: executionProvider(values.ep), threads: threadCount(values.threads) };
    const loaded = await client.load(spec);
    const model = loaded.name;
    const done = await resultsSoFar(outPath, model);
    const failed: { reading: string; line: number; why: string }[] = [];
    const todo = readings.flatMap((reading) => items.filter((it) => !done.has(key(reading, it))).map((item) => ({ reading, item })));
    if (todo.length < readings.length * items.length)
      process.stderr.write(`resuming: ${readings.length * items.length - todo.length} answers already in ${basename(outPath)}\n`);
    const bar = new ProgressBar();
    const started = Date.now();
    for (const [i, { reading, item }] of todo.entries()) {
      const left = i === 0 ? '' : `, about ${Math.ceil((((Date.now() - started) / i) * (todo.length - i)) / 1000)} s left`;
      bar.update(i / todo.length, `${reading}: answer ${i + 1} of ${todo.length}${left}`);
      const { reduce, detail } = parseReading(reading);
      try {
        const r = await client.ask(
          { ...spec, image: item.image, question: item.question, reduce, detail, maxNewTokens, temperature: 0 },
          {},
        );
        const outcome: Outcome = {
          model,
          reading,
          line: item.line,
          question: item.question,
          type: item.type,
          answer: r.answer,
          ...scored(item, r.answer),
          visualTokens: r.visual.kept,
          totalVisualTokens: r.visual.total,
          ttftMs: r.timings.ttftMs,
        };
        await appendFile(outPath, `${JSON.stringify(outcome)}\n`);
        done.set(key(reading, item), outcome);
      } catch (e) {
        const why = messageOf(e);
        failed.push({ reading, line: item.line, why });
        bar.done();
        process.stderr.write(`line ${item.line}: not answered with ${reading}: ${why}\n`);
      }
    }
    bar.update(1, `${todo.length} answers`);
    bar.done();
    const outcomes = readings.flatMap((reading) => items.flatMap((it) => done.get(key(reading, it)) ?? []));
    const summary = summarise(readings, outcomes);
    if (values.json) {
      await writeOut(`${JSON.stringify({ model, set: setPath, results: outPath, readings: summary, skipped: bad, failed })}\n`);
    } else {
      await writeOut(`${model}, ${items.length} questions of ${basename(setPath)}\n${evalTable(summary)}\n`);
    }
    if (loaded.randomWeights) process.stderr.write(`${RANDOM_WEIGHTS_NOTICE}\n`);
  } finally {
    await client.dispose();
  }
}

function key(reading: string, item: Pick<EvalItem, 'line' | 'question'>): string {
  return `${reading}\u0000${item.line}\u0000${item.question}`;
}

/** The answer's score, and for yes/no what it said against the label (POPE's figures are over those). */
function scored(item: EvalItem, answer: string): Pick<Outcome, 'score' | 'said' | 'label'> {
  switch (item.type) {
    case 'open':
      return { score: vqaAccuracy(answer, item.answers) };
    case 'yes/no': {
      const said = yesNo(answer);
      const label = item.answers[0]!.trim().toLowerCase() as 'yes' | 'no';
      return { score: said === label ? 1 : 0, said, label };
    }
    case 'multiple choice':
      return { score: choiceMatch(answer, item.answers[0]!) };
  }
}

/** The answers a results file already holds for `model`, by reading, line and question; a line cut short by an interruption is ignored. */
async function resultsSoFar(path: string, model: string): Promise<Map<string, Outcome>> {
  const done = new Map<string, Outcome>();
  const text = await readFile(path, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    try {
      const o = JSON.parse(line) as Outcome;
      if (o.model === model && typeof o.reading === 'string' && typeof o.score === 'number') done.set(key(o.reading, o), o);
    } catch {
      // an empty line, or the last one half written
    }
  }
  return done;
}
