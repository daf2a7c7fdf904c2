/**
 * `prumerge`: the command line over the same core as the extension.
 * Exit codes: 0 done, 2 bad input or usage (one line on stderr), 1 anything unexpected.
 */
import { detailOf, messageOf, UserError } from '../common/errors';
import { inUserTerms } from '../common/userPaths';
import { WorkerRequestError } from '../worker/engineClient';
import { EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK } from './cliError';
import { ASK_USAGE, runAsk } from './askCommand';
import { BENCH_USAGE, runBench } from './benchCommand';
import { BUILD_USAGE, runBuild, runSynth, SYNTH_USAGE } from './buildCommand';
import { EVAL_USAGE, runEval } from './evalCommand';
import { INSPECT_USAGE, runInspect } from './inspectCommand';
import { PREPROCESS_USAGE, runPreprocess } from './preprocessCommand';
import { REDUCE_USAGE, runReduce } from './reduceCommand';

declare const PRUMERGE_VERSION: string | undefined;

const COMMANDS: Record<string, { run: (args: string[]) => Promise<void>; usage: string; summary: string }> = {
  ask: { run: runAsk, usage: ASK_USAGE, summary: 'answer a question about an image (streams the answer)' },
  inspect: { run: runInspect, usage: INSPECT_USAGE, summary: 'run the vision tower and the reduction; write the token heatmap' },
  bench: { run: runBench, usage: BENCH_USAGE, summary: 'time the first token and decoding with and without PruMerge' },
  reduce: { run: runReduce, usage: REDUCE_USAGE, summary: 'reduce vision-tower taps with PruMerge, the selections or the baselines' },
  eval: { run: runEval, usage: EVAL_USAGE, summary: 'score readings on a JSONL set of questions (VQA, POPE, multiple choice)' },
  preprocess: { run: runPreprocess, usage: PREPROCESS_USAGE, summary: 'show and save what the vision tower sees of an image' },
  build: { run: runBuild, usage: BUILD_USAGE, summary: 'build a model folder from a Hugging Face LLaVA checkpoint' },
  synth: { run: runSynth, usage: SYNTH_USAGE, summary: 'build a model folder of random weights of a named shape' },
};

const USAGE = `usage: prumerge <command> [options]     (prumerge <command> --help for its options)

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`)
  .join('\n')}`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? process.stderr : process.stdout).write(`${USAGE}\n`);
    return name === undefined ? EXIT_BAD_INPUT : EXIT_OK;
  }
  if (name === '--version') {
    process.stdout.write(`${typeof PRUMERGE_VERSION === 'string' ? PRUMERGE_VERSION : 'dev'}\n`);
    return EXIT_OK;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`prumerge: unknown command "${name}"\n${USAGE}\n`);
    return EXIT_BAD_INPUT;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return EXIT_OK;
  }
  try {
    await command.run(args);
    return EXIT_OK;
  } catch (e) {
    if (isUserError(e)) {
      // files named as the user typed them, relative to here; a library's own words only when debugging
      process.stderr.write(`prumerge ${name}: ${inUserTerms((e as Error).message, { folders: [process.cwd()] })}\n`);
      const detail = detailOf(e);
      if (process.env['PRUMERGE_DEBUG'] && detail) process.stderr.write(`${detail}\n`);
      return EXIT_BAD_INPUT;
    }
    process.stderr.write(`prumerge ${name}: unexpected failure: ${messageOf(e)}\n`);
    if (process.env['PRUMERGE_DEBUG'] && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return EXIT_FAILURE;
  }
}

function isUserError(e: unknown): boolean {
  return (
    e instanceof UserError ||
    (e instanceof WorkerRequestError && e.user) ||
    // node:util parseArgs: unknown option, missing value, unexpected argument
    (e instanceof TypeError &&
      typeof (e as NodeJS.ErrnoException).code === 'string' &&
      (e as NodeJS.ErrnoException).code!.startsWith('ERR_PARSE_ARGS'))
  );
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
