/**
 * The chat view in the PruMerge Vision side bar: an attached image, questions and streamed
 * answers with their figures, Stop, follow-ups, New chat, the reduction picker and "compare".
 * Messages from the webview are checked with isChatRequest before anything is done with them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { ChatEvent, ChatRequest, isChatRequest } from '../protocol';
import { messageOf } from '../common/errors';
import { parseReduceMode } from '../pipeline/reduceMode';
import { ChatSession } from './chatSession';
import { Disposable } from './disposable';
import { EngineService } from './engineService';
import { readSettings } from './settings';
import { decodeImageDataUrl, isImagePath, isInside, isSafeExternalLink } from './imageFiles';
import { webviewHtml } from './webviewHtml';

interface AttachedImage {
  readonly uri: vscode.Uri;
  readonly pasted: boolean;
}

export class ChatViewProvider extends Disposable implements vscode.WebviewViewProvider {
  static readonly viewType = 'prumergeVision.chat';

  private view: vscode.WebviewView | undefined;
  /** The shown view's listeners, disposed with it. */
  private viewListeners: vscode.Disposable | undefined;
  private image: AttachedImage | undefined;
  private readonly session: ChatSession;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly engine: EngineService,
  ) {
    super();
    this._register({ dispose: () => this.viewListeners?.dispose() });
    this.session = new ChatSession(
      engine,
      (e) => this.post(e),
      () => readSettings(),
    );
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = { enableScripts: true, localResourceRoots: this.resourceRoots() };
    view.webview.html = webviewHtml(view.webview, this.context.extensionUri, {
      title: 'PruMerge Vision chat',
      script: 'dist/webview/chat.js',
      styles: ['media/chat.css'],
      body: '<main id="app" aria-live="polite"></main>',
      initialState: { reduce: this.defaultReduce() },
    });
    this.viewListeners?.dispose();
    this.viewListeners = vscode.Disposable.from(
      view.webview.onDidReceiveMessage((m: unknown) => {
        if (!isChatRequest(m)) {
          this.engine.log.appendLine(`ignored a malformed message from the chat view: ${JSON.stringify(m)?.slice(0, 200)}`);
          return;
        }
        void this.handle(m).catch((e: unknown) => this.session.fail(messageOf(e)));
      }),
      view.onDidDispose(() => {
        this.viewListeners?.dispose();
        this.viewListeners = undefined;
        this.view = undefined;
        this.session.viewClosed();
      }),
    );
  }

  /** Attaches an image from the workspace (or pasted) and focuses the question box. */
  async attach(uri: vscode.Uri, pasted = false): Promise<void> {
    if (!isImagePath(uri.fsPath)) {
      void vscode.window.showErrorMessage(
        `${basename(uri.fsPath)} is not an image PruMerge Vision reads (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF, SVG).`,
      );
      return;
    }
    if (!pasted && !isInside(uri.fsPath, this.workspaceFolders())) {
      void vscode.window.showErrorMessage('PruMerge Vision only reads images inside the open workspace folders.');
      return;
    }
    this.image = { uri, pasted };
    this.session.image = uri.fsPath;
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
    if (this.view) this.view.webview.options = { enableScripts: true, localResourceRoots: this.resourceRoots() };
    await this.postState();
    this.post({ type: 'focusQuestion' });
  }

  newChat(): Promise<void> {
    return this.session.newChat();
  }

  private async handle(m: ChatRequest): Promise<void> {
    switch (m.type) {
      case 'ready':
        await this.postState();
        return this.session.ready();
      case 'ask':
        return this.session.ask(m.question, parseReduceMode(m.reduce), m.compare);
      case 'stop':
        return this.session.stop();
      case 'newChat':
        return this.newChat();
      case 'pickImage':
        return void vscode.commands.executeCommand('prumergeVision.askAboutImage');
      case 'dropImage':
        return this.attach(vscode.Uri.parse(m.uri, true));
      case 'pasteImage':
        return this.attachPasted(m.dataUrl);
      case 'showHeatmap':
        if (this.image) await vscode.commands.executeCommand('prumergeVision.showHeatmap', this.image.uri, m.reduce);
        return;
      case 'copy':
        return vscode.env.clipboard.writeText(m.text);
      case 'openLink':
        if (isSafeExternalLink(m.href)) await vscode.env.openExternal(vscode.Uri.parse(m.href));
        return;
    }
  }

  /** A pasted screenshot is kept in the extension's storage (not in the workspace). */
  private async attachPasted(dataUrl: string): Promise<void> {
    const { bytes, extension } = decodeImageDataUrl(dataUrl);
    const dir = vscode.Uri.joinPath(this.context.globalStorageUri, 'pasted');
    await mkdir(dir.fsPath, { recursive: true });
    const file = vscode.Uri.joinPath(dir, `pasted-${new Date().toISOString().replace(/[:.]/g, '-')}.${extension}`);
    await writeFile(file.fsPath, bytes);
    await this.attach(file, true);
  }

  private async postState(): Promise<void> {
    const spec = this.engine.spec();
    const image = this.image;
    this.post({
      type: 'state',
      image: image
        ? { name: basename(image.uri.fsPath), src: this.view?.webview.asWebviewUri(image.uri).toString() ?? '', pasted: image.pasted }
        : null,
      model: { name: spec.demo ? 'demo model' : basename(spec.modelDir), randomWeights: spec.demo },
      reduce: this.defaultReduce(),
    });
  }

  private defaultReduce(): string {
    return readSettings().defaultReduction;
  }

  private workspaceFolders(): string[] {
    return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  }

  private resourceRoots(): vscode.Uri[] {
    const roots = [
      vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview'),
      vscode.Uri.joinPath(this.context.extensionUri, 'media'),
    ];
    if (this.image) roots.push(vscode.Uri.joinPath(this.image.uri, '..'));
    return roots;
  }

  private post(event: ChatEvent): void {
    void this.view?.webview.postMessage(event);
  }
}
