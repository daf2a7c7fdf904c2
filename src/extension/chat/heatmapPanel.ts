/**
 * The token heatmap: a panel that shows the image with the patch grid mapped back onto it,
 * CLS attention as colour, kept patches outlined, the patches merged into each one on hover,
 * a mode toggle and PNG export. Only the vision tower and the reduction run: it appears fast.
 */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { HeatmapEvent, HeatmapRequest, isHeatmapRequest } from '../../shared/webviewMessages';
import { messageOf } from '../../common/errors';
import { parseReading } from '../../shared/reduceMode';
import { Disposable } from '../disposable';
import { EngineService } from '../engineService';
import { webviewHtml } from '../webviewHtml';

export class HeatmapPanel extends Disposable {
  static readonly viewType = 'prumergeVision.heatmap';
  private static readonly open = new Map<string, HeatmapPanel>();

  private reduce: string;
  /** The inspection on its way: a newer mode, or the panel closing, cancels it. */
  private running: AbortController | undefined;

  static show(context: vscode.ExtensionContext, engine: EngineService, image: vscode.Uri, reduce: string): void {
    const existing = HeatmapPanel.open.get(image.fsPath);
    if (existing) {
      existing.panel.reveal(vscode.ViewColumn.Beside);
      void existing.render(reduce);
      return;
    }
    HeatmapPanel.open.set(image.fsPath, new HeatmapPanel(context, engine, image, reduce));
  }

  private readonly panel: vscode.WebviewPanel;

  private constructor(
    context: vscode.ExtensionContext,
    private readonly engine: EngineService,
    private readonly image: vscode.Uri,
    reduce: string,
  ) {
    super();
    this.reduce = reduce;
    this.panel = this._register(
      vscode.window.createWebviewPanel(HeatmapPanel.viewType, `Visual tokens: ${basename(image.fsPath)}`, vscode.ViewColumn.Beside, {
        enableScripts: true,
        localResourceRoots: [
          vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview'),
          vscode.Uri.joinPath(context.extensionUri, 'media'),
          vscode.Uri.joinPath(image, '..'),
        ],
      }),
    );
    this.panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'icon.svg');
    this.panel.webview.html = webviewHtml(this.panel.webview, context.extensionUri, {
      title: 'Visual token heatmap',
      script: 'dist/webview/heatmap.js',
      styles: ['media/heatmap.css'],
      body: '<main id="app"></main>',
      initialState: { reduce, lowDetail: engine.modelFacts()?.lowDetail ?? false },
    });
    this._register(
      this.panel.webview.onDidReceiveMessage((m: unknown) => {
        if (!isHeatmapRequest(m)) return;
        this.handle(m).catch((e: unknown) => void vscode.window.showErrorMessage(`PruMerge Vision: ${messageOf(e)}`));
      }),
    );
    this._register(this.panel.onDidDispose(() => this.dispose()));
  }

  override dispose(): void {
    this.running?.abort();
    if (HeatmapPanel.open.get(this.image.fsPath) === this) HeatmapPanel.open.delete(this.image.fsPath);
    super.dispose();
  }

  private async handle(m: HeatmapRequest): Promise<void> {
    switch (m.type) {
      case 'ready':
        return this.render(this.reduce);
      case 'changeMode':
        return this.render(m.reduce);
      case 'exportPng': {
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.joinPath(this.image, '..', `${basename(this.image.fsPath).replace(/\.[^.]+$/, '')}-visual-tokens.png`),
          filters: { 'PNG image': ['png'] },
        });
        if (!target) return;
        await writeFile(target.fsPath, await this.engine.heatmapPng(this.image.fsPath, parseReading(this.reduce)));
        void vscode.window.showInformationMessage(`Saved ${basename(target.fsPath)}`);
        return;
      }
    }
  }

  private async render(reduce: string): Promise<void> {
    this.reduce = reduce;
    this.running?.abort(); // superseded: the worker drops it, waiting or running
    const running = (this.running = new AbortController());
    this.post({ type: 'loading', reduce });
    try {
      const inspection = await this.engine.inspect(this.image.fsPath, parseReading(reduce), running.signal);
      if (running.signal.aborted) return;
      this.post({
        type: 'heatmap',
        imageSrc: this.panel.webview.asWebviewUri(this.image).toString(),
        name: basename(this.image.fsPath),
        inspection,
      });
    } catch (e) {
      if (!running.signal.aborted) this.post({ type: 'error', message: messageOf(e) });
    } finally {
      if (this.running === running) this.running = undefined;
    }
  }

  private post(event: HeatmapEvent): void {
    // closed while an inspection ran: its result has nowhere to go
    if (!this.isDisposed) void this.panel.webview.postMessage(event);
  }
}
