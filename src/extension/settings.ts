/**
 * The extension's settings, typed, in one place: each `prumergeVision.*` key with its default as
 * package.json declares it. Reading a setting anywhere else goes through here.
 */
import * as vscode from 'vscode';
import type { ExecutionProviderSetting } from '../pipeline/runtime/sessions';
import type { SettingValues } from './models/modelFolderSetting';
import { AUTO_REDUCTION } from '../shared/reductionChoices';

export const SECTION = 'prumergeVision';

export interface Settings {
  /** The model folder as each scope sets it (workspace trust decides which applies). */
  readonly modelFolder: SettingValues | undefined;
  readonly executionProvider: ExecutionProviderSetting;
  /** onnxruntime's threads per graph; 0: one per physical core. */
  readonly threads: number;
  /** MiB of vision-tower outputs the worker keeps per model. */
  readonly visionCacheMB: number;
  /** `auto` (readingSetting resolves it for the model in use), or as parseReading reads it. */
  readonly defaultReduction: string;
  readonly maxNewTokens: number;
  readonly temperature: number;
  /** '' = HF_ENDPOINT or huggingface.co. */
  readonly hubEndpoint: string;
}

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration(SECTION);
  return {
    modelFolder: c.inspect<string>('modelFolder'),
    executionProvider: c.get<ExecutionProviderSetting>('executionProvider', 'auto'),
    threads: within(c.get<number>('threads', 0), 0, 256, 0, Math.floor),
    visionCacheMB: within(c.get<number>('visionCacheMB', 256), 0, 65536, 256, Math.floor),
    defaultReduction: c.get<string>('defaultReduction', AUTO_REDUCTION),
    // settings.json takes any number the schema only warns about: kept within what the engine accepts
    maxNewTokens: within(c.get<number>('maxNewTokens', 256), 1, 4096, 256, Math.floor),
    temperature: within(c.get<number>('temperature', 0), 0, 2, 0),
    hubEndpoint: c.get<string>('hubEndpoint', '').trim(),
  };
}

/** `v` clamped to [min, max] (after `round`), or `fallback` when it is not a number. */
function within(v: unknown, min: number, max: number, fallback: number, round: (x: number) => number = (x) => x): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, round(v))) : fallback;
}

/** Sets the user's model folder ('' = the demo model). */
export function setModelFolder(folder: string): Thenable<void> {
  return vscode.workspace.getConfiguration(SECTION).update('modelFolder', folder, vscode.ConfigurationTarget.Global);
}

export function affectsSettings(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration(SECTION);
}
