/**
 * The chat view in the PruMerge Vision side bar: an attached image, questions and streamed
 * answers with their figures, Stop, follow-ups, New chat, the reduction picker and "compare".
 * Messages from the webview are checked with isChatRequest before anything is done with them.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { ChatEvent, ChatRequest, isChatRequest } from '../../shared/webviewMessages';
import type { ImageTokenCount } from '../../shared/reductionChoices';
import { messageOf } from '../../common/errors';
import { parseReading } from '../../shared/reduceMode';
import { ChatSession } from './chatSession';
import { ChatHistory, ChatStore, newChatId, SavedChat, withChat } from './chatStore';
import { Disposable } from '../disposable';
import { EngineService } from '../engineService';
import { readSettings } from '../settings';
import { decodeImageDataUrl, isImagePath, isInside, isSafeExternalLink } from '../imageFiles';
import { webviewHtml } from '../webviewHtml';

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
  /** The last image whose tokens the worker counted (anyres models). */
  private counted: { readonly key: string; readonly count: ImageTokenCount } | undefined;
  private readonly session: ChatSession;
  /** The workspace's saved chats (newest first), and which of them is on screen. */
  private readonly store: ChatStore;
  private history: ChatHistory = { chats: [] };
  private chatId = newChatId();
  private saveTimer: NodeJS.Timeout | undefined;
  /** Saves in order: a later save never overtakes an earlier one. */
  private saving: Promise<void> = Promise.resolve();
  /** Settles once the saved chats are read and the newest is on screen. */
  readonly restored: Promise<void>;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly engine: EngineService,
  ) {
    super();
    this._register({ dispose: () => this.viewListeners?.dispose() });
    // a window without a folder has no workspace storage: its chats go to the extension's own
    this.store = new ChatStore(context.storageUri?.fsPath ?? join(context.globalStorageUri.fsPath, 'no-workspace'));
    this.session = new ChatSession(
      engine,
      (e) => this.post(e),
      () => readSettings(),
      () => this.scheduleSave(),
    );
    this._register({ dispose: () => void this.saveNow() });
    // the random-weights notice and the token counts follow the model
    this._register(engine.onDidChangeModel(() => void this.postState().then(() => this.countTokens())));
    this.restored = this.restoreSaved();
  }

  /** Reads the saved chats and shows the newest, as it was before the window went away. */
  private async restoreSaved(): Promise<void> {
    const loaded = await this.store.load();
    if (loaded.warning) void vscode.window.showWarningMessage(`PruMerge Vision: ${loaded.warning}`);
    this.history = loaded;
    const newest = loaded.chats[0];
    if (newest) await this.show(newest);
  }

  /** Puts a saved chat on screen; its image comes back if it still exists. */
  private async show(chat: SavedChat): Promise<void> {
    this.chatId = chat.id;
    const image = chat.image && (await isFile(chat.image.path)) ? chat.image : undefined;
    this.image = image ? { uri: vscode.Uri.file(image.path), pasted: image.pasted } : undefined;
    this.session.restore(image?.path, chat.answers);
    if (this.view) this.view.webview.options = { enableScripts: true, localResourceRoots: this.resourceRoots() };
    await this.postState();
  }

  /** The saved chats, newest first (the one on screen among them). */
  get savedChats(): readonly SavedChat[] {
    return this.history.chats;
  }

  async openSaved(id: string): Promise<void> {
    await this.saveNow();
    const chat = this.history.chats.find((c) => c.id === id);
    if (chat) await this.show(chat);
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
  }

  /** Forgets every saved chat and pasted image, and starts an empty one. */
  async clearHistory(): Promise<void> {
    clearTimeout(this.saveTimer);
    await this.saving;
    this.history = { chats: [] };
    this.image = undefined;
    this.session.image = undefined;
    await this.session.newChat();
    this.chatId = newChatId();
    await this.store.clear();
    await this.postState();
  }

  private scheduleSave(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => void this.saveNow(), 200);
  }

  private saveNow(): Promise<void> {
    clearTimeout(this.saveTimer);
    const answers = this.session.transcript;
    if (answers.length > 0) {
      const chat: SavedChat = {
        id: this.chatId,
        title: answers.find((a) => a.question)?.question ?? 'Chat',
        updated: Date.now(),
        image: this.image ? { path: this.image.uri.fsPath, pasted: this.image.pasted } : null,
        answers: answers.map((a) => ({ ...a })),
      };
      this.history = withChat(this.history, chat);
    }
    const history = this.history;
    const attached = this.image?.pasted ? this.image.uri.fsPath : undefined; // not asked about yet, but in use
    this.saving = this.saving
      .then(() => this.store.save(history, attached))
      .catch((e: unknown) => this.engine.log.appendLine(`could not save the chats: ${messageOf(e)}`));
    return this.saving;
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
    // the saved chat is read when the view is created: an image attached meanwhile must not be replaced by its
    await this.restored;
    if (this.session.isRestored && this.image?.uri.fsPath !== uri.fsPath) {
      // the restored chat was about another picture: its answers must not become this one's history
      await this.newChat();
    }
    this.image = { uri, pasted };
    this.session.image = uri.fsPath;
    this.scheduleSave();
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
    if (this.view) this.view.webview.options = { enableScripts: true, localResourceRoots: this.resourceRoots() };
    await this.postState();
    this.post({ type: 'focusQuestion' });
    void this.countTokens();
  }

  async newChat(): Promise<void> {
    await this.saveNow(); // the chat on screen stays in the history
    this.chatId = newChatId();
    await this.session.newChat();
  }

  private async handle(m: ChatRequest): Promise<void> {
    switch (m.type) {
      case 'ready':
        await this.postState();
        return this.session.ready();
      case 'ask':
        return this.session.ask(m.question, parseReading(m.reduce), m.compare);
      case 'stop':
        return this.session.stop();
      case 'newChat':
        return this.newChat();
      case 'pickImage':
        return void vscode.commands.executeCommand('prumergeVision.askAboutImage');
      case 'getModel':
        return void vscode.commands.executeCommand('prumergeVision.downloadModel');
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
    const dir = vscode.Uri.file(this.store.pastedDir);
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
      model: { name: spec.demo ? 'demo model' : basename(spec.modelDir), randomWeights: this.engine.randomWeights() },
      reduce: this.defaultReduce(),
      tokens: this.tokenCount() ?? null,
      lowDetail: this.engine.modelFacts()?.lowDetail ?? false,
    });
  }

  /** The attached image's visual tokens: the model's patch count, or for LLaVA-NeXT, what the worker counted. */
  private tokenCount(): ImageTokenCount | undefined {
    const facts = this.engine.modelFacts();
    if (!facts) return undefined;
    if (!facts.anyres) return { total: facts.patches, subImages: 1 };
    return this.counted && this.counted.key === this.countKey() ? this.counted.count : undefined;
  }

  private countKey(): string {
    return `${this.engine.spec().modelDir}\u0000${this.image?.uri.fsPath ?? ''}`;
  }

  /**
   * Asks the worker how many tokens the attached image makes with an anyres model (it depends on
   * the image's size). Only once an image is attached: the user is about to ask, so starting the
   * worker now costs nothing they would not wait for anyway.
   */
  private async countTokens(): Promise<void> {
    const image = this.image;
    if (!image || !this.engine.modelFacts()?.anyres || this.tokenCount()) return;
    const key = this.countKey();
    try {
      const count = await this.engine.imageTokens(image.uri.fsPath);
      this.counted = { key, count };
      if (key === this.countKey()) await this.postState();
    } catch {
      // the question will say what is wrong with the image or the model
    }
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

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}
