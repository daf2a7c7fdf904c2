/** --model / --ep as every engine command reads them. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { demoModelDir } from '../pipeline/engine/engine';
import { EXECUTION_PROVIDERS, ExecutionProviderSetting } from '../pipeline/runtime/sessions';
import { CliError } from './cliError';
import { wholeNumber } from './io';

export const MODEL_OPTIONS = {
  model: { type: 'string' },
  ep: { type: 'string', default: 'auto' },
  threads: { type: 'string', default: '0' },
} as const;

/** --threads N: onnxruntime's threads per graph; 0 (the default) is one per physical core. */
export function threadCount(text: string): number {
  return wholeNumber(text, '--threads', 0, 256);
}

/** How --threads reads in usage texts. */
export const DETAIL_HELP =
  "--detail auto|medium|low  auto (default): the model's own layout; medium: the base image and at most 4 tiles (LLaVA-NeXT, LLaVA-OneVision); low: one padded crop (LLaVA-OneVision only, much faster)";

export const THREADS_HELP = '--threads N          threads per model graph; 0 (default) is one per physical core';

export function modelDir(model: string | undefined): string {
  if (model !== undefined) return model;
  const demo = demoModelDir();
  if (!existsSync(join(demo, 'model.json'))) {
    throw new CliError(`the built-in demo model is missing (${demo}): run \`npm run build\` in the repository, or pass --model DIR`);
  }
  return demo;
}

export function executionProvider(ep: string): ExecutionProviderSetting {
  if (!EXECUTION_PROVIDERS.includes(ep as ExecutionProviderSetting)) {
    throw new CliError(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got "${ep}"`);
  }
  return ep as ExecutionProviderSetting;
}

/** Said on stderr whenever a model of random weights answers. */
export const RANDOM_WEIGHTS_NOTICE =
  'note: this model has random weights (the demo model or `prumerge synth`): its answers are meaningless';
