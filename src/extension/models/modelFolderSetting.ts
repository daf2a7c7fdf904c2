/**
 * Which model folder the settings name, with workspace trust applied. A model folder is input to
 * native code (onnxruntime parses its graphs), so a folder named by an untrusted workspace's
 * settings is ignored, and the user is told which and why. The user's own setting still applies.
 * No vscode import: the values come from `WorkspaceConfiguration.inspect` and, in an untrusted
 * workspace (where VS Code hides the workspace's value from extensions), from its settings files.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'jsonc-parser';

const KEY = 'prumergeVision.modelFolder';

export interface SettingValues {
  readonly globalValue?: string;
  readonly workspaceValue?: string;
  readonly workspaceFolderValue?: string;
}

export interface ModelFolderChoice {
  /** The folder to use; undefined: the built-in demo model. */
  readonly folder: string | undefined;
  /** A folder named by the untrusted workspace and not used. */
  readonly ignored: string | undefined;
}

const given = (v: string | undefined): string | undefined => (v?.trim() ? v.trim() : undefined);

/**
 * The folder to use. `namedByWorkspace`: what the workspace's settings files name, read only
 * when the workspace is untrusted (VS Code leaves it out of `values` then).
 */
export function chooseModelFolder(values: SettingValues | undefined, trusted: boolean, namedByWorkspace?: string): ModelFolderChoice {
  const user = given(values?.globalValue);
  const workspace = given(values?.workspaceFolderValue) ?? given(values?.workspaceValue);
  if (trusted) return { folder: workspace ?? user, ignored: undefined };
  const named = given(namedByWorkspace) ?? workspace;
  return { folder: user, ignored: named !== undefined && named !== user ? named : undefined };
}

/**
 * The model folder a workspace's settings name: `.vscode/settings.json` of its folders, and the
 * `settings` of a .code-workspace file. Files that are missing or not JSON with comments name none.
 */
export async function modelFolderNamedIn(folderSettings: readonly string[], workspaceFile?: string): Promise<string | undefined> {
  const read = async (path: string): Promise<unknown> => {
    try {
      return parse(await readFile(path, 'utf8'), [], { allowTrailingComma: true });
    } catch {
      return undefined;
    }
  };
  const pick = (settings: unknown): string | undefined => {
    const v = typeof settings === 'object' && settings !== null ? (settings as Record<string, unknown>)[KEY] : undefined;
    return typeof v === 'string' ? given(v) : undefined;
  };
  for (const path of folderSettings) {
    const v = pick(await read(path));
    if (v) return v;
  }
  if (!workspaceFile) return undefined;
  const ws = await read(workspaceFile);
  return pick(typeof ws === 'object' && ws !== null ? (ws as Record<string, unknown>)['settings'] : undefined);
}

/** What the user is told when a workspace's model folder is ignored. */
export function ignoredFolderNotice(choice: ModelFolderChoice): string | undefined {
  if (!choice.ignored) return undefined;
  const using = choice.folder ? `your own model folder (${choice.folder})` : 'the built-in demo model';
  return (
    `PruMerge Vision ignores the model folder this workspace names (${choice.ignored}) until you trust the workspace: ` +
    `model files are read by native code (onnxruntime). Using ${using} instead.`
  );
}
