/**
 * The extension's one inference worker: which model and provider the settings name, the status
 * bar item that shows them with the worker's state, and the client that talks to the worker.
 * The worker starts on the first request, not at activation.
 */
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import type { AskHooks, AskResult } from '../pipeline/engine';
import type { ExecutionProviderSetting } from '../pipeline/sessions';
import type { AskParams, InspectResult, LoadResult, ModelSpec } from '../protocol';
import { EngineClient, WorkerState } from '../worker/engineClient';

export const SETTINGS = 'prumergeVision';

export class EngineService implements vscode.Disposable {
  private readonly client: EngineClient;
  private readonly status: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private state: WorkerState = 'stopped';
  private loaded: LoadResult | undefined;
  readonly log: vscode.OutputChannel;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('PruMerge Vision');
    this.client = new EngineClient({
      workerPath: context.asAbsolutePath('dist/worker.js'),
      idleTimeoutMs: 10 * 60_000,
      onStateChange: (s) => {
        this.state = s;
        this.render();
      },
      onLog: (line) => this.log.appendLine(`[worker] ${line}`),
    });
    this.status = vscode.window.createStatusBarItem('prumergeVision.status', vscode.StatusBarAlignment.Right, 100);
    this.status.name = 'PruMerge Vision';
    this.status.command = 'prumergeVision.showModelActions';
    this.render();
    this.status.show();
    this.disposables.push(
      this.status,
      this.log,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(SETTINGS)) {
          this.loaded = undefined;
          this.render();
        }
      }),
    );
  }

  /** The model the settings name; the bundled demo model when none is set (or the workspace is untrusted). */
  spec(): ModelSpec & { readonly demo: boolean } {
    const config = vscode.workspace.getConfiguration(SETTINGS);
    const folder = vscode.workspace.isTrusted ? config.get<string>('modelFolder', '').trim() : '';
    const ep = config.get<ExecutionProviderSetting>('executionProvider', 'auto');
    if (folder) return { modelDir: folder, ep, demo: false };
    return { modelDir: this.context.asAbsolutePath('models/demo'), ep, demo: true };
  }

  async load(): Promise<LoadResult> {
    const spec = this.spec();
    if (spec.demo && !existsSync(this.context.asAbsolutePath('models/demo/model.json'))) {
      throw new Error('the built-in demo model is missing from the extension: reinstall it, or set prumergeVision.modelFolder');
    }
    this.loaded = await this.client.load({ modelDir: spec.modelDir, ep: spec.ep });
    this.render();
    return this.loaded;
  }

  async ask(params: Omit<AskParams, 'requestId' | 'modelDir' | 'ep'>, hooks: AskHooks): Promise<AskResult> {
    await this.load();
    const { modelDir, ep } = this.spec();
    return this.client.ask({ ...params, modelDir, ep }, hooks);
  }

  async inspect(image: string, reduce: string): Promise<InspectResult> {
    await this.load();
    const { modelDir, ep } = this.spec();
    return this.client.inspect({ modelDir, ep, image, reduce });
  }

  async heatmapPng(image: string, reduce: string): Promise<Buffer> {
    await this.load();
    const { modelDir, ep } = this.spec();
    return Buffer.from(await this.client.heatmapPng({ modelDir, ep, image, reduce }), 'base64');
  }

  async newConversation(): Promise<void> {
    if (this.client.pid === undefined) return; // no worker: nothing remembered
    const { modelDir, ep } = this.spec();
    await this.client.newConversation({ modelDir, ep });
  }

  download(repo: string, onProgress: (p: { file: string; bytes: number; total: number; bytesPerSecond: number }) => void, signal: AbortSignal): Promise<string> {
    const endpoint = vscode.workspace.getConfiguration(SETTINGS).get<string>('hubEndpoint', '').trim();
    return this.client.download(repo, endpoint, onProgress, signal);
  }

  build(from: string, out: string, dtype: 'fp32' | 'fp16' | 'int4', onProgress: (stage: string, fraction: number) => void): Promise<{ name: string; bytes: number }> {
    return this.client.build({ from, out, dtype }, onProgress);
  }

  async restart(): Promise<void> {
    await this.client.stop();
    this.loaded = undefined;
    this.render();
  }

  private render(): void {
    const name = this.loaded?.name ?? (this.spec().demo ? 'demo model' : 'model');
    const ep = this.loaded?.ep ?? this.spec().ep;
    const icon = this.state === 'busy' || this.state === 'starting' ? '$(sync~spin)' : '$(eye)';
    const what = { stopped: 'not running', starting: 'loading', idle: 'idle', busy: 'generating' }[this.state];
    this.status.text = `${icon} ${this.loaded?.randomWeights ?? this.spec().demo ? 'PruMerge: demo' : `PruMerge: ${name}`}`;
    this.status.tooltip = `PruMerge Vision: ${name} on ${ep}, worker ${what}${this.loaded?.randomWeights ? '\nRandom weights: answers are meaningless' : ''}\nClick for model actions`;
  }

  dispose(): void {
    void this.client.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
