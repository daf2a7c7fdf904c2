/**
 * The token heatmap: a panel that shows the image with the patch grid mapped back onto it,
 * each patch's score (CLS attention, or attention received for SigLIP) as colour, kept patches outlined, the patches merged into each one on hover,
 * a mode toggle and PNG export. Only the vision tower and the reduction run: it appears fast.
 */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { HeatmapEvent, HeatmapRequest, isHeatmapRequest } from '../../shared/webviewMessages';
import { parseReading } from '../../shared/reduceMode';
import { Disposable } from '../disposable';
import type { InspectResult } from '../../worker/protocol';
import { EngineService } from '../engineService';
import { webviewHtml } from '../webviewHtml';
import { pastedImagesDir, userMessage } from '../userMessages';
import { NO_DETAILS } from '../../shared/reductionChoices';

export class HeatmapPanel extends Disposable {
  static readonly viewType = 'prumergeVision.heatmap';
  private static readonly open = new Map<string, HeatmapPanel>();

  private reduce: string;
  /** The inspection on its way: a newer mode, or the panel closing, cancels it. */
  private running: AbortController | undefined;
  /** The inspection the panel shows, once it succeeded: what Export PNG draws (none while loading or failed). */
  private shown: InspectResult | undefined;

  static show(context: vscode.ExtensionContext, engine: EngineService, image: vscode.Uri, reduce: string): void {
    const existing = HeatmapPanel.open.get(image.fsPath);
    if (existing) {
      existing.panel.reveal(existing.panel.viewColumn);
      void existing.render(reduce);
      return;
    }
    // beside the editor the first time; every later heatmap joins the group the others are in
    const others = [...HeatmapPanel.open.values()].flatMap((p) => (p.panel.viewColumn ? [p.panel.viewColumn] : []));
    HeatmapPanel.open.set(image.fsPath, new HeatmapPanel(context, engine, image, reduce, others[0] ?? vscode.ViewColumn.Beside));
  }

  private readonly panel: vscode.WebviewPanel;
  private readonly pastedDir: string;

  private constructor(
    context: vscode.ExtensionContext,
    private readonly engine: EngineService,
    private readonly image: vscode.Uri,
    reduce: string,
    column: vscode.ViewColumn,
  ) {
    super();
    this.reduce = reduce;
    this.pastedDir = pastedImagesDir(context);
    this.panel = this._register(
      vscode.window.createWebviewPanel(HeatmapPanel.viewType, `Visual tokens: ${basename(image.fsPath)}`, column, {
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
      initialState: { reduce, details: engine.modelFacts()?.details ?? NO_DETAILS },
    });
    this._register(
      this.panel.webview.onDidReceiveMessage((m: unknown) => {
        if (!isHeatmapRequest(m)) return;
        this.handle(m).catch((e: unknown) => void vscode.window.showErrorMessage(`PruMerge Vision: ${this.describe(e)}`));
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
        // the button is disabled meanwhile; a click that raced the change finds nothing to save
        const inspection = this.shown;
        if (inspection === undefined) return;
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.joinPath(this.image, '..', `${basename(this.image.fsPath).replace(/\.[^.]+$/, '')}-visual-tokens.png`),
          filters: { 'PNG image': ['png'] },
        });
        if (!target) return;
        await writeFile(target.fsPath, await this.engine.heatmapPng(this.image.fsPath, inspection));
        void vscode.window.showInformationMessage(`Saved ${basename(target.fsPath)}`);
        return;
      }
    }
  }

  private async render(reduce: string): Promise<void> {
    this.reduce = reduce;
    this.running?.abort(); // superseded: the worker drops it, waiting or running
    const running = (this.running = new AbortController());
    this.shown = undefined;
    this.post({ type: 'loading', reduce });
    try {
      const inspection = await this.engine.inspect(this.image.fsPath, parseReading(reduce), running.signal);
      if (running.signal.aborted) return;
      this.shown = inspection;
      this.post({
        type: 'heatmap',
        imageSrc: this.panel.webview.asWebviewUri(this.image).toString(),
        name: basename(this.image.fsPath),
        inspection,
      });
    } catch (e) {
      if (!running.signal.aborted) this.post({ type: 'error', message: this.describe(e) });
    } finally {
      if (this.running === running) this.running = undefined;
    }
  }

  private describe(e: unknown): string {
    return userMessage(e, this.engine.log, this.pastedDir);
  }

  private post(event: HeatmapEvent): void {
    // closed while an inspection ran: its result has nowhere to go
    if (!this.isDisposed) void this.panel.webview.postMessage(event);
  }
}
