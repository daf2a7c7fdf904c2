/**
 * The extension's settings, typed, in one place: each `prumergeVision.*` key with its default as
 * package.json declares it. Reading a setting anywhere else goes through here.
 */
import * as vscode from 'vscode';
import type { ExecutionProviderSetting } from '../pipeline/sessions';
import type { SettingValues } from './modelFolderSetting';

export const SECTION = 'prumergeVision';

export interface Settings {
  /** The model folder as each scope sets it (workspace trust decides which applies). */
  readonly modelFolder: SettingValues | undefined;
  readonly executionProvider: ExecutionProviderSetting;
  /** As parseReduceMode reads it. */
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
    defaultReduction: c.get<string>('defaultReduction', 'prumerge'),
    maxNewTokens: c.get<number>('maxNewTokens', 256),
    temperature: c.get<number>('temperature', 0),
    hubEndpoint: c.get<string>('hubEndpoint', '').trim(),
  };
}

/** Sets the user's model folder ('' = the demo model). */
export function setModelFolder(folder: string): Thenable<void> {
  return vscode.workspace.getConfiguration(SECTION).update('modelFolder', folder, vscode.ConfigurationTarget.Global);
}

export function affectsSettings(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration(SECTION);
}
