/**
 * The chat view in the PruMerge Vision side bar: an attached image, questions and streamed
 * answers with their figures, Stop, follow-ups, New chat, the reduction picker and "compare".
 * Messages from the webview are checked with isChatRequest before anything is done with them.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { ChatEvent, ChatRequest, ImageReading, isChatRequest } from '../../shared/webviewMessages';
import { ImageTokenCount, NO_DETAILS } from '../../shared/reductionChoices';
import { messageOf } from '../../common/errors';
import { lowResolutionNote } from '../../shared/imageNotes';
import { Detail, parseReading } from '../../shared/reduceMode';
import { ChatSession } from './chatSession';
import { ChatHistory, ChatStore, newChatId, SavedChat, withChat } from './chatStore';
import { Disposable } from '../disposable';
import { EngineService } from '../engineService';
import { readSettings } from '../settings';
import { decodeImageDataUrl, isImagePath, isInside, isSafeExternalLink } from '../imageFiles';
import { webviewHtml } from '../webviewHtml';
import { chatStorageDir, userMessage } from '../userMessages';

interface AttachedImage {
  readonly uri: vscode.Uri;
  readonly pasted: boolean;
  /** Said in the header: it cannot be read, or it is far below the model's resolution (null: nothing to say, or not checked yet). */
  warning: string | null;
  /** Its crops read into the worker's vision cache ahead of the question; aborted when it is no longer attached. */
  reading: ImageReading | null;
  readonly early: AbortController;
}

function attachedImage(uri: vscode.Uri, pasted: boolean): AttachedImage {
  return { uri, pasted, warning: null, reading: null, early: new AbortController() };
}

/** While an answer streams, its words are saved at most this often, so that a reload keeps what was shown. */
const STREAM_SAVE_MS = 500;
/** Set once the first answer is written: the walkthrough's first step completes on it. */
const ANSWERED_CONTEXT = 'prumergeVision.answered';

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
  /** Why the chat on screen began, until its first question (kept here: a hidden view loses its page). */
  private chatNote: string | null = null;
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
    this.store = new ChatStore(chatStorageDir(context));
    this.session = new ChatSession(
      engine,
      (e) => this.post(e),
      () => readSettings(),
      (streaming) => this.scheduleSave(streaming),
      { nameOf: (path) => this.nameOf(path), describeError: (e) => this.describeError(e) },
    );
    if (context.globalState.get<boolean>(ANSWERED_CONTEXT)) void vscode.commands.executeCommand('setContext', ANSWERED_CONTEXT, true);
    this._register({ dispose: () => void this.saveNow() });
    this._register({ dispose: () => this.image?.early.abort() });
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
    this.chatNote = null;
    const image = chat.image && (await isFile(chat.image.path)) ? chat.image : undefined;
    this.setImage(image ? attachedImage(vscode.Uri.file(image.path), image.pasted) : undefined);
    this.session.restore(image?.path, chat.answers);
    if (this.view) this.view.webview.options = { enableScripts: true, localResourceRoots: this.resourceRoots() };
    await this.postState();
    if (this.image) void this.checkImage(this.image);
  }

  /** The saved chats, newest first (the one on screen among them). */
  get savedChats(): readonly SavedChat[] {
    return this.history.chats;
  }

  async openSaved(id: string): Promise<void> {
    await this.session.settle(); // an answer being written ends in the chat it belongs to
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
    this.setImage(undefined);
    this.session.image = undefined;
    await this.session.newChat();
    this.chatId = newChatId();
    await this.store.clear();
    await this.postState();
  }

  /** A change is saved shortly after; streamed words at most every STREAM_SAVE_MS, however fast they come. */
  private scheduleSave(streaming = false): void {
    if (streaming && this.saveTimer) return; // a save is due: these words go with it
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => void this.saveNow(), streaming ? STREAM_SAVE_MS : 200);
  }

  private saveNow(): Promise<void> {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const answers = this.session.transcript;
    if (answers.some((a) => a.question)) {
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
        void this.handle(m).catch((e: unknown) => this.session.fail(this.describeError(e)));
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
    const before = this.image;
    if (before && before.uri.fsPath !== uri.fsPath && this.session.transcript.some((a) => a.question)) {
      // a chat is about one picture: its answers must not read as answers about this one, nor be its history
      const earlier = this.nameOf(before.uri.fsPath);
      await this.newChat();
      this.chatNote = `A new chat about ${this.nameOf(uri.fsPath)}. The chat about ${earlier} is kept: PruMerge Vision: Open an Earlier Chat... shows it again.`;
    }
    const attached = attachedImage(uri, pasted);
    this.setImage(attached);
    this.session.image = uri.fsPath;
    this.scheduleSave();
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
    if (this.view) this.view.webview.options = { enableScripts: true, localResourceRoots: this.resourceRoots() };
    await this.postState();
    this.post({ type: 'focusQuestion' });
    void this.countTokens();
    void this.checkImage(attached);
  }

  /**
   * Decodes the attached image in the worker, so that one that cannot be read, or is far below the
   * model's resolution, is said so now rather than after a question. Starting the worker for it
   * costs nothing the question would not.
   */
  private async checkImage(image: AttachedImage): Promise<void> {
    const name = this.nameOf(image.uri.fsPath);
    let readable = false;
    try {
      const size = await this.engine.checkImage(image.uri.fsPath);
      const side = this.engine.modelFacts()?.imageSize;
      image.warning = (side ? lowResolutionNote(name, size, side) : undefined) ?? null;
      readable = true;
    } catch (e) {
      image.warning = `${this.describeError(e)}.`.replace(/\.\.$/, '.');
    }
    if (this.image === image && image.warning) await this.postState();
    if (this.image === image && readable) void this.readEarly(image);
  }

  /** The image on screen; the one it replaces stops being read ahead. */
  private setImage(image: AttachedImage | undefined): void {
    if (this.image !== image) this.image?.early.abort();
    this.image = image;
  }

  /**
   * Reads the attached image's crops in the worker now, behind any answer running, so that the
   * question finds them read (the vision tower is most of the wait on a CPU). Progress shows
   * under the image; a question asked meanwhile reads the crops not yet done itself.
   */
  private async readEarly(image: AttachedImage): Promise<void> {
    let detail: Detail = 'auto';
    try {
      detail = parseReading(this.defaultReduce()).detail;
    } catch {
      // a setting the picker does not offer: the model's own layout
    }
    const shown = (r: ImageReading): void => {
      image.reading = r;
      if (this.image === image) this.post({ type: 'imageReading', ...r });
    };
    try {
      await this.engine.prepare(image.uri.fsPath, detail, (done, total) => shown({ done, total }), image.early.signal);
      // the tower's time per crop is known now: the picker's estimates follow it
      if (this.image === image && this.engine.modelFacts()?.tiled) {
        this.counted = undefined;
        await this.countTokens();
      }
    } catch (e) {
      if (image.early.signal.aborted) return;
      // the question will read the image itself, and say what is wrong if it still is
      this.engine.log.appendLine(`reading ${this.nameOf(image.uri.fsPath)} ahead of the question failed: ${this.describeError(e)}`);
      image.reading = null;
      if (this.image === image) await this.postState();
    }
  }

  /** Starts an empty chat; the one on screen stays in the history, an answer being written with it. */
  async newChat(): Promise<void> {
    await this.session.settle();
    await this.saveNow();
    this.chatId = newChatId();
    this.chatNote = null;
    await this.session.newChat();
  }

  /** An image as the user knows it: relative to the workspace; a pasted one as such. */
  private nameOf(path: string): string {
    if (isInside(path, [this.store.pastedDir])) return 'pasted image';
    return vscode.workspace.asRelativePath(path, (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
  }

  private describeError(e: unknown): string {
    return userMessage(e, this.engine.log, this.store.pastedDir);
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
      case 'showHeatmap': {
        // an answer's heatmap is of the image that answer was given, whatever is attached now
        const answer = m.answerId ? this.session.transcript.find((a) => a.id === m.answerId) : undefined;
        const image = answer?.image ? vscode.Uri.file(answer.image.path) : this.image?.uri;
        if (!image) return;
        if (!(await isFile(image.fsPath))) {
          throw new Error(`${this.nameOf(image.fsPath)} was moved or deleted since that answer: its heatmap cannot be drawn.`);
        }
        await vscode.commands.executeCommand('prumergeVision.showHeatmap', image, m.reduce);
        return;
      }
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
        ? {
            name: basename(image.uri.fsPath),
            src: this.view?.webview.asWebviewUri(image.uri).toString() ?? '',
            pasted: image.pasted,
            warning: image.warning,
            reading: image.reading,
          }
        : null,
      model: { name: spec.demo ? 'demo model' : basename(spec.modelDir), randomWeights: this.engine.randomWeights() },
      reduce: this.defaultReduce(),
      tokens: this.tokenCount() ?? null,
      details: this.engine.modelFacts()?.details ?? NO_DETAILS,
      chatNote: this.chatNote,
    });
  }

  /** The attached image's visual tokens: the model's patch count, or for LLaVA-NeXT, what the worker counted. */
  private tokenCount(): ImageTokenCount | undefined {
    const facts = this.engine.modelFacts();
    if (!facts) return undefined;
    if (!facts.tiled) return { total: facts.patches, subImages: 1 };
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
    if (!image || !this.engine.modelFacts()?.tiled || this.tokenCount()) return;
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
    if (event.type === 'answerStart') this.chatNote = null;
    if (event.type === 'answerEnd' && !this.context.globalState.get<boolean>(ANSWERED_CONTEXT)) {
      void this.context.globalState.update(ANSWERED_CONTEXT, true);
      void vscode.commands.executeCommand('setContext', ANSWERED_CONTEXT, true);
    }
    void this.view?.webview.postMessage(event);
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}
