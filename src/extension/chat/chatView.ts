/**
 * The chat view in the PruMerge Vision side bar: the attached images, questions and streamed
 * answers with their figures, Stop, follow-ups, New chat, the reduction picker and "compare".
 * Messages from the webview are checked with isChatRequest before anything is done with them.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import * as vscode from 'vscode';
import { ChatEvent, ChatRequest, isChatRequest } from '../../shared/webviewMessages';
import { MAX_IMAGES, NO_DETAILS, readingSetting } from '../../shared/reductionChoices';
import { messageOf } from '../../common/errors';
import { parseReading } from '../../shared/reduceMode';
import { AttachedImage, attachedImage, samePaths, withAdded } from './attachedImages';
import { ImagesAhead } from './imagesAhead';
import { pickWorkspaceImages } from './pickImages';
import { ChatSession } from './chatSession';
import { ChatHistory, ChatStore, newChatId, SavedChat, withChat } from './chatStore';
import { Disposable } from '../disposable';
import { EngineService } from '../engineService';
import { readSettings } from '../settings';
import { decodeImageDataUrl, isImagePath, isInside, isSafeExternalLink } from '../imageFiles';
import { webviewHtml } from '../webviewHtml';
import { chatStorageDir, userMessage } from '../userMessages';

/** While an answer streams, its words are saved at most this often, so that a reload keeps what was shown. */
const STREAM_SAVE_MS = 500;
/** Set once the first answer is written: the walkthrough's first step completes on it. */
const ANSWERED_CONTEXT = 'prumergeVision.answered';

export class ChatViewProvider extends Disposable implements vscode.WebviewViewProvider {
  static readonly viewType = 'prumergeVision.chat';

  private view: vscode.WebviewView | undefined;
  /** The shown view's listeners, disposed with it. */
  private viewListeners: vscode.Disposable | undefined;
  /** In the order a question puts them. */
  private images: AttachedImage[] = [];
  /** Reads the attached images ahead of the question, and counts their tokens. */
  private readonly ahead: ImagesAhead;
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
    this.ahead = new ImagesAhead(engine, {
      images: () => this.images,
      nameOf: (path) => this.nameOf(path),
      describeError: (e) => this.describeError(e),
      post: (e) => this.post(e),
      postState: () => this.postState(),
      defaultReduce: () => this.defaultReduce(),
    });
    if (context.globalState.get<boolean>(ANSWERED_CONTEXT)) void vscode.commands.executeCommand('setContext', ANSWERED_CONTEXT, true);
    this._register({ dispose: () => void this.saveNow() });
    this._register({ dispose: () => this.images.forEach((i) => i.early?.stop.abort()) });
    // the random-weights notice and the token counts follow the model
    this._register(engine.onDidChangeModel(() => void this.postState().then(() => this.ahead.countTokens())));
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

  /** Puts a saved chat on screen; its images come back where they still exist. */
  private async show(chat: SavedChat): Promise<void> {
    this.chatId = chat.id;
    this.chatNote = null;
    const present = await Promise.all(chat.images.map((i) => isFile(i.path)));
    this.setImages(chat.images.filter((_, i) => present[i]).map((i) => attachedImage(i.path, i.pasted)));
    this.session.restore(this.paths(), chat.answers);
    if (this.view) this.view.webview.options = { enableScripts: true, localResourceRoots: this.resourceRoots() };
    await this.postState();
    for (const image of this.images) void this.ahead.check(image);
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
    this.setImages([]);
    this.session.images = [];
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
        images: this.images.map(({ path, pasted }) => ({ path, pasted })),
        answers: answers.map((a) => ({ ...a })),
      };
      this.history = withChat(this.history, chat);
    }
    const history = this.history;
    const attached = this.images.filter((i) => i.pasted).map((i) => i.path); // not asked about yet, but in use
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

  /**
   * Attaches images from the workspace (or pasted) and focuses the question box: `add` puts them
   * after those attached (the chat's own drop, paste and pick), otherwise they replace them (the
   * Explorer's and the editor's Ask About Image), in a new chat when this one has questions.
   */
  async attach(uris: readonly vscode.Uri[], { add, pasted = false }: { readonly add: boolean; readonly pasted?: boolean }): Promise<void> {
    const notImage = uris.find((u) => !isImagePath(u.fsPath));
    if (notImage) {
      void vscode.window.showErrorMessage(
        `${basename(notImage.fsPath)} is not an image PruMerge Vision reads (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF, SVG).`,
      );
      return;
    }
    if (!pasted && !uris.every((u) => isInside(u.fsPath, this.workspaceFolders()))) {
      void vscode.window.showErrorMessage('PruMerge Vision only reads images inside the open workspace folders.');
      return;
    }
    // the saved chat is read when the view is created: an image attached meanwhile must not be replaced by its
    await this.restored;
    const fresh = uris.map((u) => attachedImage(u.fsPath, pasted));
    const images = withAdded(add ? this.images : [], fresh, (p) => this.nameOf(p));
    if (typeof images === 'string') {
      void vscode.window.showErrorMessage(images);
      return;
    }
    if (!add && !samePaths(images, this.images) && this.images.length > 0 && this.session.transcript.some((a) => a.question)) {
      // a chat is about its pictures: its answers must not read as answers about these, nor be their history
      const earlier = this.images.map((i) => this.nameOf(i.path)).join(', ');
      await this.newChat();
      const now = images.map((i) => this.nameOf(i.path)).join(', ');
      this.chatNote = `A new chat about ${now}. The chat about ${earlier} is kept: PruMerge Vision: Open an Earlier Chat... shows it again.`;
    }
    const added = images.filter((i) => !this.images.includes(i));
    this.setImages(images);
    this.scheduleSave();
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
    if (this.view) this.view.webview.options = { enableScripts: true, localResourceRoots: this.resourceRoots() };
    await this.postState();
    this.post({ type: 'focusQuestion' });
    void this.ahead.countTokens();
    for (const image of added) void this.ahead.check(image);
  }

  /** Takes one image off the question; those left are read again where their detail changes (one image of several read as one crop). */
  private async remove(path: string): Promise<void> {
    if (!this.images.some((i) => i.path === path)) return;
    this.setImages(this.images.filter((i) => i.path !== path));
    this.scheduleSave();
    await this.postState();
    this.post({ type: 'focusQuestion' });
    void this.ahead.countTokens();
  }

  /** The images on screen, in order; those no longer among them stop being read ahead, the others are read at the detail the question will use. */
  private setImages(images: AttachedImage[]): void {
    for (const gone of this.images.filter((i) => !images.includes(i))) gone.early?.stop.abort();
    this.images = images;
    this.session.images = this.paths();
    this.ahead.readAhead();
  }

  private paths(): string[] {
    return this.images.map((i) => i.path);
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
      case 'ask': {
        const reading = parseReading(m.reduce);
        // Compare without a reading named: all tokens, read at the chosen reading's detail
        const beside =
          m.compareWith !== undefined ? parseReading(m.compareWith) : { reduce: { kind: 'none' as const }, detail: reading.detail };
        return this.session.ask(m.question, reading, m.compare ? beside : undefined);
      }
      case 'stop':
        return this.session.stop();
      case 'newChat':
        return this.newChat();
      case 'pickImage': {
        const picked = await pickWorkspaceImages(
          this.images.length ? 'Add which images to the question?' : 'Ask about which images?',
          true,
        );
        return picked.length > 0 ? this.attach(picked, { add: true }) : undefined;
      }
      case 'removeImage':
        return this.remove(m.key);
      case 'getModel':
        return void vscode.commands.executeCommand('prumergeVision.downloadModel');
      case 'dropImage':
        return this.attach([vscode.Uri.parse(m.uri, true)], { add: true });
      case 'pasteImage':
        return this.attachPasted(m.dataUrl);
      case 'showHeatmap': {
        // an answer's heatmap is of the images that answer was given, whatever is attached now
        const answer = m.answerId ? this.session.transcript.find((a) => a.id === m.answerId) : undefined;
        const paths = answer?.images?.map((i) => i.path) ?? this.paths();
        if (paths.length === 0) return;
        for (const path of paths) {
          if (!(await isFile(path)))
            throw new Error(`${this.nameOf(path)} was moved or deleted since that answer: its heatmap cannot be drawn.`);
        }
        const uris = paths.map((p) => vscode.Uri.file(p));
        await vscode.commands.executeCommand('prumergeVision.showHeatmap', uris[0], uris, m.reduce, answer?.question);
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
    await this.attach([file], { add: true, pasted: true });
  }

  private async postState(): Promise<void> {
    const spec = this.engine.spec();
    const facts = this.engine.modelFacts();
    const model = spec.demo ? 'demo model' : basename(spec.modelDir);
    this.post({
      type: 'state',
      images: this.images.map((image) => ({
        key: image.path,
        name: basename(image.path),
        src: this.view?.webview.asWebviewUri(vscode.Uri.file(image.path)).toString() ?? '',
        pasted: image.pasted,
        warning: image.warning,
        reading: image.reading,
      })),
      maxImages: MAX_IMAGES,
      severalNote:
        this.images.length > 1 && facts && !facts.severalImages
          ? `${model} was trained on one image per conversation: its answers about several may be poor.`
          : null,
      model: { name: model, randomWeights: this.engine.randomWeights() },
      reduce: this.defaultReduce(),
      tokens: this.ahead.tokenCount() ?? null,
      details: facts?.details ?? NO_DETAILS,
      chatNote: this.chatNote,
    });
  }

  private defaultReduce(): string {
    return readingSetting(readSettings().defaultReduction, this.engine.modelFacts()?.score);
  }

  private workspaceFolders(): string[] {
    return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  }

  private resourceRoots(): vscode.Uri[] {
    const roots = [
      vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview'),
      vscode.Uri.joinPath(this.context.extensionUri, 'media'),
    ];
    for (const image of this.images) roots.push(vscode.Uri.file(dirname(image.path)));
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
