/**
 * The token heatmap: a panel that shows the image with the patch grid mapped back onto it,
 * each patch's score (CLS attention, or attention received for SigLIP; CDPruner's relevance to the answer's question) as colour, kept patches outlined, the patches merged into each one on hover,
 * a mode toggle and PNG export; one tab per image for a question about several, each read as that
 * question read it. Only the vision tower and the reduction run: it appears fast.
 */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { HeatmapEvent, HeatmapRequest, isHeatmapRequest } from '../../shared/webviewMessages';
import { formatReading, parseReading } from '../../shared/reduceMode';
import { Disposable } from '../disposable';
import type { InspectResult } from '../../worker/protocol';
import { EngineService } from '../engineService';
import { webviewHtml } from '../webviewHtml';
import { pastedImagesDir, userMessage } from '../userMessages';
import { detailForImages, NO_DETAILS } from '../../shared/reductionChoices';

export class HeatmapPanel extends Disposable {
  static readonly viewType = 'prumergeVision.heatmap';
  private static readonly open = new Map<string, HeatmapPanel>();

  private reduce: string;
  /** The inspection on its way: a newer mode, or the panel closing, cancels it. */
  private running: AbortController | undefined;
  /** The inspection the panel shows, once it succeeded: what Export PNG draws (none while loading or failed). */
  private shown: InspectResult | undefined;

  /**
   * The panel of `images` (one of each set), shown with `reduce`; `question`: the answer's whose
   * heatmap this is (CDPruner weighs the patches by it), absent from the Explorer.
   */
  static show(
    context: vscode.ExtensionContext,
    engine: EngineService,
    images: readonly vscode.Uri[],
    reduce: string,
    question?: string,
  ): void {
    const key = images.map((i) => i.fsPath).join('\n');
    const existing = HeatmapPanel.open.get(key);
    if (existing) {
      existing.question = question;
      existing.panel.reveal(existing.panel.viewColumn);
      void existing.render(reduce);
      return;
    }
    // beside the editor the first time; every later heatmap joins the group the others are in
    const others = [...HeatmapPanel.open.values()].flatMap((p) => (p.panel.viewColumn ? [p.panel.viewColumn] : []));
    HeatmapPanel.open.set(key, new HeatmapPanel(context, engine, images, key, reduce, others[0] ?? vscode.ViewColumn.Beside, question));
  }

  /** The tab shown. */
  private index = 0;

  private readonly panel: vscode.WebviewPanel;
  private readonly pastedDir: string;

  private constructor(
    context: vscode.ExtensionContext,
    private readonly engine: EngineService,
    private readonly images: readonly vscode.Uri[],
    private readonly key: string,
    reduce: string,
    column: vscode.ViewColumn,
    /** The question of the answer the panel was opened from, if any. */
    private question: string | undefined,
  ) {
    super();
    this.reduce = reduce;
    this.pastedDir = pastedImagesDir(context);
    this.panel = this._register(
      vscode.window.createWebviewPanel(
        HeatmapPanel.viewType,
        `Visual tokens: ${images.map((i) => basename(i.fsPath)).join(', ')}`,
        column,
        {
          enableScripts: true,
          localResourceRoots: [
            vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview'),
            vscode.Uri.joinPath(context.extensionUri, 'media'),
            ...images.map((i) => vscode.Uri.joinPath(i, '..')),
          ],
        },
      ),
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
    if (HeatmapPanel.open.get(this.key) === this) HeatmapPanel.open.delete(this.key);
    super.dispose();
  }

  private async handle(m: HeatmapRequest): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.post({ type: 'images', names: this.images.map((i) => basename(i.fsPath)), index: this.index });
        return this.render(this.reduce);
      case 'changeMode':
        return this.render(m.reduce);
      case 'showImage':
        if (m.index >= this.images.length) return;
        this.index = m.index;
        return this.render(this.reduce);
      case 'exportPng': {
        // the button is disabled meanwhile; a click that raced the change finds nothing to save
        const inspection = this.shown;
        if (inspection === undefined) return;
        const image = this.images[this.index]!;
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.joinPath(image, '..', `${basename(image.fsPath).replace(/\.[^.]+$/, '')}-visual-tokens.png`),
          filters: { 'PNG image': ['png'] },
        });
        if (!target) return;
        await writeFile(target.fsPath, await this.engine.heatmapPng(image.fsPath, inspection));
        void vscode.window.showInformationMessage(`Saved ${basename(target.fsPath)}`);
        return;
      }
    }
  }

  private async render(asked: string): Promise<void> {
    // each of several images as the question about them read it
    const parsed = parseReading(asked);
    const details = this.engine.modelFacts()?.details ?? NO_DETAILS;
    const reading = { ...parsed, detail: detailForImages(parsed.detail, this.images.length, details) };
    const reduce = formatReading(reading);
    this.reduce = reduce;
    this.running?.abort(); // superseded: the worker drops it, waiting or running
    const running = (this.running = new AbortController());
    this.shown = undefined;
    this.post({ type: 'loading', reduce, index: this.index });
    const image = this.images[this.index]!;
    try {
      const inspection = await this.engine.inspect(image.fsPath, reading, running.signal, this.question);
      if (running.signal.aborted) return;
      this.shown = inspection;
      this.post({
        type: 'heatmap',
        imageSrc: this.panel.webview.asWebviewUri(image).toString(),
        name: basename(image.fsPath),
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
