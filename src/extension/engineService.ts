/**
 * The extension's one inference worker: which model and provider the settings name, the status
 * bar item that shows them with the worker's state, and the client that talks to the worker.
 * The worker starts on the first request, not at activation.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { formatBytes } from '../common/formatBytes';
import type { AskHooks } from '../pipeline/engine/stages';
import type { AskResult } from '../shared/results';
import type { Detail, Reading } from '../shared/reduceMode';
import type { AskParams, ImageCheck, ImageInput, ImageTokens, InspectResult, LoadResult, ModelSpec, WorkerStats } from '../worker/protocol';
import { EngineClient, WorkerState } from '../worker/engineClient';
import { sharedWorkerPaths } from '../worker/sharedWorker';
import type { WeightDtype } from '../format/modelManifest';
import { Disposable } from './disposable';
import { ModelFacts, readModelFacts } from './models/modelFacts';
import { chooseModelFolder, ignoredFolderNotice, modelFolderNamedIn } from './models/modelFolderSetting';
import { affectsSettings, readSettings } from './settings';

export class EngineService extends Disposable {
  private readonly client: EngineClient;
  private readonly status: vscode.StatusBarItem;
  private state: WorkerState = 'stopped';
  private loaded: LoadResult | undefined;
  /** The model folder's model.json as last read: the status bar and the chat ask for it on every render. */
  private facts: { readonly dir: string; readonly facts: ModelFacts | undefined } | undefined;
  /** The untrusted workspace's model folder the user was last told about. */
  private toldIgnored: string | undefined;
  /** What an untrusted workspace's settings files name (VS Code hides it from getConfiguration). */
  private namedByWorkspace: string | undefined;
  readonly log: vscode.OutputChannel;
  private readonly modelChanged = this._register(new vscode.EventEmitter<void>());
  /** The worker's memory and the windows sharing it, when it last went idle; undefined while none runs. */
  private workerStats: WorkerStats | undefined;
  /** The model in use may have changed (settings, workspace trust). */
  readonly onDidChangeModel = this.modelChanged.event;
  private readonly installedChanged = this._register(new vscode.EventEmitter<void>());
  /** A model folder was built in, or deleted from, the extension's storage. */
  readonly onDidChangeInstalledModels = this.installedChanged.event;

  constructor(private readonly context: vscode.ExtensionContext) {
    super();
    this.log = this._register(vscode.window.createOutputChannel('PruMerge Vision'));
    this.client = new EngineClient({
      workerPath: context.asAbsolutePath('dist/worker.js'),
      idleTimeoutMs: 10 * 60_000,
      // one worker, and one copy of the model, for all of this user's windows
      shared: sharedWorkerPaths(context.globalStorageUri.fsPath),
      onStateChange: (s) => {
        this.state = s;
        this.render();
        if (s === 'idle') void this.refreshMemory();
        if (s === 'stopped') this.workerStats = undefined;
      },
      onLog: (line) => this.log.appendLine(`[worker] ${line}`),
    });
    this.status = this._register(vscode.window.createStatusBarItem('prumergeVision.status', vscode.StatusBarAlignment.Right, 100));
    this.status.name = 'PruMerge Vision';
    this.status.command = 'prumergeVision.showModelActions';
    this.render();
    this.status.show();
    this._register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (affectsSettings(e)) {
          this.loaded = undefined;
          this.facts = undefined;
          this.render();
          this.modelChanged.fire();
        }
      }),
    );
    this._register(
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.loaded = undefined; // the workspace's model folder now applies
        this.facts = undefined;
        this.namedByWorkspace = undefined;
        this.render();
        this.modelChanged.fire();
      }),
    );
  }

  /**
   * Whether the model in use has random weights (the demo, a `prumerge synth` folder), as its
   * model.json says: known before the worker loads it, for the chat's notice.
   */
  randomWeights(): boolean {
    return this.modelFacts()?.randomWeights ?? this.spec().demo;
  }

  /** The model in use as its model.json describes it (undefined: unreadable; loading will say why). */
  modelFacts(): ModelFacts | undefined {
    const dir = this.spec().modelDir;
    if (this.facts?.dir !== dir) this.facts = { dir, facts: readModelFacts(dir) };
    return this.facts.facts;
  }

  installedModelsChanged(): void {
    this.installedChanged.fire();
  }

  /** Where the models the extension builds live. */
  get modelsDir(): string {
    return vscode.Uri.joinPath(this.context.globalStorageUri, 'models').fsPath;
  }

  /** The model, provider and threads requests name. */
  private modelSpec(): ModelSpec {
    const { modelDir, ep } = this.spec();
    const { threads, visionCacheMB } = readSettings();
    return { modelDir, ep, threads, visionCacheMB };
  }

  /** The model the settings name (an untrusted workspace's own is ignored); the bundled demo model when none is. */
  spec(): ModelSpec & { readonly demo: boolean } {
    const { folder } = this.modelFolder();
    const ep = readSettings().executionProvider;
    if (folder) return { modelDir: folder, ep, demo: false };
    return { modelDir: this.context.asAbsolutePath('models/demo'), ep, demo: true };
  }

  private modelFolder(): ReturnType<typeof chooseModelFolder> {
    return chooseModelFolder(readSettings().modelFolder, vscode.workspace.isTrusted, this.namedByWorkspace);
  }

  /** Says once per folder why an untrusted workspace's model folder is not used. */
  private async tellIgnored(): Promise<void> {
    if (vscode.workspace.isTrusted) return;
    const settingsFiles = (vscode.workspace.workspaceFolders ?? []).map(
      (f) => vscode.Uri.joinPath(f.uri, '.vscode', 'settings.json').fsPath,
    );
    const workspaceFile = vscode.workspace.workspaceFile?.scheme === 'file' ? vscode.workspace.workspaceFile.fsPath : undefined;
    this.namedByWorkspace = await modelFolderNamedIn(settingsFiles, workspaceFile);
    this.render();
    const choice = this.modelFolder();
    const notice = ignoredFolderNotice(choice);
    if (!notice || this.toldIgnored === choice.ignored) return;
    this.toldIgnored = choice.ignored;
    this.log.appendLine(notice);
    void vscode.window
      .showWarningMessage(notice, 'Manage Workspace Trust')
      .then((pick) => pick && vscode.commands.executeCommand('workbench.trust.manage'));
  }

  async load(): Promise<LoadResult> {
    await this.tellIgnored();
    const spec = this.spec();
    if (spec.demo && !existsSync(this.context.asAbsolutePath('models/demo/model.json'))) {
      throw new Error('the built-in demo model is missing from the extension: reinstall it, or set prumergeVision.modelFolder');
    }
    const loaded = await this.client.load(this.modelSpec());
    this.facts = undefined; // the folder may have been built again in place
    const changed = this.loaded?.name !== loaded.name || this.loaded.ep !== loaded.ep || this.loaded.threads !== loaded.threads;
    if (changed) {
      const fallbacks = loaded.epFallbacks.length > 0 ? ` (${loaded.epFallbacks.join('; ')})` : '';
      this.log.appendLine(
        `${loaded.name} runs on ${loaded.ep} with ${loaded.threads} thread${loaded.threads === 1 ? '' : 's'} per graph${fallbacks}`,
      );
    }
    this.loaded = loaded;
    this.render();
    return this.loaded;
  }

  async ask(params: Omit<AskParams, keyof ModelSpec | 'requestId'>, hooks: AskHooks): Promise<AskResult> {
    await this.load();
    return this.client.ask({ ...params, ...this.modelSpec() }, hooks);
  }

  /**
   * A standalone question to the model in `modelDir` (VS Code's language-model API names the
   * model itself, and sends the whole conversation with each request).
   */
  askModel(modelDir: string, params: Omit<AskParams, keyof ModelSpec | 'requestId' | 'standalone'>, hooks: AskHooks): Promise<AskResult> {
    return this.client.ask({ ...params, ...this.modelSpec(), modelDir, standalone: true }, hooks);
  }

  /** Visual tokens `image` makes without reduction with the model in `modelDir` (no vision run). */
  imageTokensOf(modelDir: string, image: ImageInput, detail: Detail): Promise<ImageTokens> {
    return this.client.imageTokens({ ...this.modelSpec(), modelDir, image, detail });
  }

  /** `question`: the answer's, for its heatmap (CDPruner weighs the patches by it). */
  async inspect(image: string, reading: Reading, signal?: AbortSignal, question?: string): Promise<InspectResult> {
    await this.load();
    return this.client.inspect({ ...this.modelSpec(), image, ...reading, ...(question ? { question } : {}) }, signal);
  }

  /** Reads an image's crops into the worker's vision cache ahead of a question; `signal` drops the rest. */
  async prepare(image: string, detail: Detail, onProgress: (done: number, total: number) => void, signal: AbortSignal): Promise<void> {
    await this.load();
    if (signal.aborted) return;
    await this.client.prepare({ ...this.modelSpec(), image, detail }, onProgress, signal);
  }

  /** Decodes the image in the worker (no model): its size, or an ImageInputError saying what is wrong. */
  checkImage(image: string): Promise<ImageCheck> {
    return this.client.checkImage(image);
  }

  /** Visual tokens the image makes without reduction with the model in use (no vision run). */
  async imageTokens(image: string): Promise<ImageTokens> {
    await this.load();
    return this.client.imageTokens({ ...this.modelSpec(), image });
  }

  /** `inspection` drawn over `image` as a PNG (the worker draws it; no model runs). */
  async heatmapPng(image: string, inspection: InspectResult): Promise<Buffer> {
    return Buffer.from(await this.client.heatmapPng({ image, inspection }), 'base64');
  }

  async newConversation(): Promise<void> {
    if (this.client.pid === undefined) return; // no worker: nothing remembered
    await this.client.newConversation(this.modelSpec());
  }

  download(
    repo: string,
    onProgress: (p: { file: string; bytes: number; total: number; bytesPerSecond: number }) => void,
    signal: AbortSignal,
  ): Promise<string> {
    return this.client.download(repo, readSettings().hubEndpoint, onProgress, signal);
  }

  build(
    from: string,
    out: string,
    dtype: WeightDtype,
    name: string,
    onProgress: (stage: string, fraction: number) => void,
  ): Promise<{ name: string; bytes: number }> {
    return this.client.build({ from, out, dtype, name }, onProgress);
  }

  /** Asks the idle worker how much memory it holds, for the status bar and the log. */
  private async refreshMemory(): Promise<void> {
    const stats = await this.client.stats();
    if (!stats || this.isDisposed) return;
    this.workerStats = stats;
    this.log.appendLine(
      `worker ${stats.pid}: ${formatBytes(stats.rssBytes)} in memory, models ${stats.modelDirs.join(', ') || 'none'}, shared by ${stats.clients} window${stats.clients === 1 ? '' : 's'}`,
    );
    this.render();
  }

  /** Ends the worker for every window sharing it; the next question starts a new one. */
  async restart(): Promise<void> {
    await this.client.stop(true);
    this.loaded = undefined;
    this.render();
  }

  private render(): void {
    if (this.isDisposed) return;
    const name = this.loaded?.name ?? (this.spec().demo ? 'demo model' : 'model');
    const ep = this.loaded?.ep ?? this.spec().ep;
    const icon = this.state === 'busy' || this.state === 'starting' ? '$(sync~spin)' : '$(eye)';
    const what = { stopped: 'not running', starting: 'loading', idle: 'idle', busy: 'generating' }[this.state];
    this.status.text = `${icon} ${this.randomWeights() ? `PruMerge: ${this.spec().demo ? 'demo' : `${name} (random weights)`}` : `PruMerge: ${name}`}`;
    const ignored = this.modelFolder().ignored;
    const w = this.workerStats;
    const memory = w ? ` (${formatBytes(w.rssBytes)} in memory${w.clients > 1 ? `, shared by ${w.clients} windows` : ''})` : '';
    const held = w && w.modelDirs.length > 0 ? `\nModels loaded: ${w.modelDirs.map((d) => basename(d)).join(', ')}` : '';
    this.status.tooltip =
      `PruMerge Vision: ${name} on ${ep}${this.loaded ? ` (${this.loaded.threads} threads)` : ''}, worker ${what}${memory}${held}` +
      `${this.randomWeights() ? '\nRandom weights: answers are meaningless' : ''}` +
      `${ignored ? `\nRestricted mode: this workspace's model folder (${ignored}) is ignored until you trust it` : ''}` +
      `${this.loaded?.epFallbacks.length ? `\nNot on a GPU: ${this.loaded.epFallbacks.join('; ')}` : ''}\nClick for model actions`;
  }

  override dispose(): void {
    void this.client.dispose();
    super.dispose();
  }
}
