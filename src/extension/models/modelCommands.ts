/** The commands about models: download, build, use, list and delete them. */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { messageOf } from '../../common/errors';
import { freeBytes } from '../../common/diskSpace';
import { formatBytes } from '../../common/formatBytes';
import type { WeightDtype } from '../../format/modelManifest';
import { CatalogEntry, readCatalog } from './catalog';
import { confirm } from '../confirm';
import { EngineService } from '../engineService';
import { deleteInside, folderBytes, hubRepoOf, InstalledModel, listInstalledModels } from './installedModels';
import { setModelFolder } from '../settings';

/** A checkpoint folder picked by the user, built in the format picked, then used. */
export async function buildFromCheckpointFolder(context: vscode.ExtensionContext, engine: EngineService): Promise<void> {
  const from = (
    await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      openLabel: 'Build From This Checkpoint',
      title: 'A Hugging Face LLaVA checkpoint folder (config.json, *.safetensors, tokenizer.json)',
    })
  )?.[0];
  if (!from) return;
  const dtype = await pickDtype();
  if (dtype) await buildAndUse(context, engine, from.fsPath, basename(from.fsPath), dtype);
}

export async function useModelFolder(engine: EngineService): Promise<void> {
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel: 'Use Model Folder',
    title: 'A folder built by PruMerge Vision (it holds model.json)',
  });
  const folder = picked?.[0];
  if (!folder) return;
  if (!existsSync(join(folder.fsPath, 'model.json'))) {
    void vscode.window.showErrorMessage(
      `${folder.fsPath} has no model.json. To use a Hugging Face checkpoint, run "Build Model From Checkpoint Folder..." first.`,
    );
    return;
  }
  await setModelFolder(folder.fsPath);
  await engine.load().then(
    (m) => vscode.window.showInformationMessage(`PruMerge Vision now uses ${m.name} (${m.ep}).`),
    (e: unknown) => vscode.window.showErrorMessage(`PruMerge Vision could not load that model: ${messageOf(e)}`),
  );
}

/** What an entry costs, and whether the download and the built folder fit in `free` bytes. */
function catalogDetail(e: CatalogEntry, free: number | undefined): string {
  const sizes = `about ${e.approxGiB} GiB to download${e.approxBuiltGiB ? `, ${e.approxBuiltGiB} GiB once built` : ''}`;
  const needed = (e.approxGiB + (e.approxBuiltGiB ?? e.approxGiB)) * 2 ** 30;
  const fits = free === undefined || needed <= free ? '' : ` (more than the ${formatBytes(free)} free)`;
  return `${e.description}; ${e.licence ? `licence: ${e.licence}; ` : ''}${sizes}${fits}`;
}

/** A catalog entry or any repository, downloaded with progress, then built and used. */
export async function downloadModel(context: vscode.ExtensionContext, engine: EngineService): Promise<void> {
  const catalog = await readCatalog(context.asAbsolutePath('models/catalog.json'));
  const free = await freeBytes(context.globalStorageUri.fsPath).catch(() => undefined);
  const picked = await vscode.window.showQuickPick(
    [
      ...catalog.map((e) => ({
        label: e.name,
        description: e.repo,
        detail: catalogDetail(e, free),
        repo: e.repo,
      })),
      { label: 'Other Repository...', description: 'any LLaVA-1.5, LLaVA-NeXT or LLaVA-OneVision checkpoint with safetensors', repo: '' },
    ],
    { title: `Download a model from the Hugging Face hub${free === undefined ? '' : ` (${formatBytes(free)} free on this disk)`}` },
  );
  if (!picked) return;
  const repo =
    picked.repo ||
    (
      await vscode.window.showInputBox({
        prompt: 'The repository, as org/name',
        placeHolder: 'llava-hf/llava-1.5-7b-hf',
        validateInput: (v) => (/^[\w.-]+\/[\w.-]+$/.test(v.trim()) ? undefined : 'org/name'),
      })
    )?.trim();
  if (!repo) return;
  const dtype = await pickDtype();
  if (!dtype) return;
  let snapshot: string;
  try {
    snapshot = await downloadWithProgress(engine, repo);
  } catch (e) {
    void vscode.window.showErrorMessage(`The download of ${repo} stopped: ${messageOf(e)}`);
    return;
  }
  await buildAndUse(context, engine, snapshot, repo.split('/')[1]!, dtype);
}

function downloadWithProgress(engine: EngineService, repo: string): Thenable<string> {
  const controller = new AbortController();
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Downloading ${repo}`, cancellable: true },
    async (progress, token) => {
      token.onCancellationRequested(() => controller.abort());
      let last = 0;
      return engine.download(
        repo,
        (p) => {
          const gib = (n: number): string => (n / 2 ** 30).toFixed(2);
          progress.report({
            message: `${gib(p.bytes)} of ${gib(p.total)} GiB, ${(p.bytesPerSecond / 2 ** 20).toFixed(1)} MiB/s (${p.file})`,
            increment: (100 * (p.bytes - last)) / Math.max(p.total, 1),
          });
          last = p.bytes;
        },
        controller.signal,
      );
    },
  );
}

export async function showModelActions(engine: EngineService): Promise<void> {
  const spec = engine.spec();
  const items: (vscode.QuickPickItem & { command: string })[] = [
    { label: '$(library) Installed Models...', description: 'switch, delete, free disk space', command: 'prumergeVision.manageModels' },
    { label: '$(folder-opened) Use Model Folder...', command: 'prumergeVision.useModelFolder' },
    { label: '$(cloud-download) Download Model...', description: 'from the Hugging Face hub', command: 'prumergeVision.downloadModel' },
    { label: '$(tools) Build Model From Checkpoint Folder...', command: 'prumergeVision.buildModelFromCheckpoint' },
    { label: '$(beaker) Use the Demo Model', description: 'random weights: meaningless answers', command: 'prumergeVision.useDemoModel' },
    { label: '$(debug-restart) Restart the Inference Process', command: 'prumergeVision.restartWorker' },
    { label: '$(output) Show Log', command: 'prumergeVision.showLog' },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title: `PruMerge Vision: ${spec.demo ? 'demo model (random weights)' : spec.modelDir}`,
  });
  if (picked) await vscode.commands.executeCommand(picked.command);
}

/** The models built here: size, format, which is in use; use one, delete one, or delete its download. */
export async function manageModels(engine: EngineService): Promise<void> {
  const modelsDir = engine.modelsDir;
  const models = await listInstalledModels(modelsDir);
  const inUse = engine.spec();
  if (models.length === 0) {
    const download = 'Download Model...';
    if ((await vscode.window.showInformationMessage('No models are installed yet.', download)) === download)
      await vscode.commands.executeCommand('prumergeVision.downloadModel');
    return;
  }
  const picked = await vscode.window.showQuickPick(
    models.map((m) => ({
      label: `${m.dir === inUse.modelDir ? '$(check) ' : ''}${m.name}`,
      description: `${formatBytes(m.bytes)}, ${m.dtype}${m.dir === inUse.modelDir ? ', in use' : ''}`,
      detail: `${m.vision}. ${m.download ? `Built from ${m.download.repo}, still downloaded in ${m.download.dir}` : m.dir}`,
      model: m,
    })),
    { title: `Installed models (${formatBytes(models.reduce((n, m) => n + m.bytes, 0))} in ${modelsDir})` },
  );
  if (!picked) return;
  const m = picked.model;
  const actions = [
    { label: '$(check) Use This Model', run: () => setModelFolder(m.dir) },
    { label: '$(trash) Delete This Model...', run: () => deleteModel(engine, modelsDir, m) },
    ...(m.download ? [{ label: '$(trash) Delete Its Downloaded Checkpoint...', run: () => deleteDownload(m.download!) }] : []),
  ];
  const action = await vscode.window.showQuickPick(actions, { title: m.name });
  await action?.run();
}

async function deleteModel(engine: EngineService, modelsDir: string, m: InstalledModel): Promise<void> {
  const used = m.dir === engine.spec().modelDir;
  const question = `Delete ${m.name} (${formatBytes(m.bytes)})?${used ? ' It is in use: PruMerge Vision goes back to the demo model.' : ''}`;
  if (!(await confirm(question, 'Delete'))) return;
  if (used) {
    await setModelFolder('');
    await engine.restart(); // its files are no longer held open
  }
  await deleteInside(modelsDir, m.dir);
  engine.installedModelsChanged();
  void vscode.window.showInformationMessage(`Deleted ${m.name}.`);
}

/** `download` is a hub cache repository folder (hubRepoOf found it by its models--org--name layout). */
async function deleteDownload(download: { dir: string; repo: string }): Promise<void> {
  const bytes = await folderBytes(download.dir);
  const question = `Delete the downloaded checkpoint of ${download.repo} (${formatBytes(bytes)} in the Hugging Face cache)? The built model keeps working; building it again would download it again.`;
  if (!(await confirm(question, 'Delete'))) return;
  await rm(download.dir, { recursive: true, force: true });
  void vscode.window.showInformationMessage(`Deleted the download of ${download.repo}.`);
}

async function pickDtype(): Promise<WeightDtype | undefined> {
  const picked = await vscode.window.showQuickPick(
    [
      { label: 'int4', description: 'CPU: 4-bit language model, fastest decoding, smallest' },
      { label: 'fp16', description: 'GPU: float16 throughout, half the size of fp32' },
      { label: 'fp32', description: 'float32 throughout: largest, most exact' },
    ],
    { title: 'Weight format' },
  );
  return picked?.label as WeightDtype | undefined;
}

/** Builds a model folder in the extension's storage with a progress notification, then uses it. */
async function buildAndUse(
  context: vscode.ExtensionContext,
  engine: EngineService,
  from: string,
  name: string,
  dtype: WeightDtype,
): Promise<void> {
  const out = vscode.Uri.joinPath(context.globalStorageUri, 'models', `${name}-${dtype}`);
  try {
    const built = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Building ${name} (${dtype})`, cancellable: false },
      async (progress) => {
        let last = 0;
        return engine.build(from, out.fsPath, dtype, name, (stage, fraction) => {
          progress.report({ message: stage, increment: Math.max(0, (fraction - last) * 100) });
          last = fraction;
        });
      },
    );
    engine.installedModelsChanged();
    await setModelFolder(out.fsPath);
    const download = hubRepoOf(from);
    const free = 'Delete the Download';
    const picked = await vscode.window.showInformationMessage(
      `Built ${built.name} (${(built.bytes / 2 ** 30).toFixed(2)} GiB); PruMerge Vision now uses it.` +
        (download ? ' The downloaded checkpoint is no longer needed to run it.' : ''),
      ...(download ? [free] : []),
    );
    if (picked === free && download) await deleteDownload(download);
  } catch (e) {
    void vscode.window.showErrorMessage(`The build failed: ${messageOf(e)}`);
  }
}
