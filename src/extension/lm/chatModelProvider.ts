/**
 * The installed models as VS Code language models (vendor `prumerge`): VS Code's chat view and
 * other extensions (`vscode.lm.selectChatModels({ vendor: 'prumerge' })`) send them messages
 * with text and images; the answers come from the same shared worker and engine as our own chat
 * view, with the reduction the settings choose. docs/vscode-chat.md says what each part does.
 */
import { randomUUID } from 'node:crypto';
import type { Tokenizer } from '@huggingface/tokenizers';
import * as vscode from 'vscode';
import { messageOf } from '../../common/errors';
import type { ModelManifest } from '../../format/modelManifest';
import type { AskResult } from '../../shared/results';
import { loadTokenizer } from '../../format/modelTokenizer';
import { offeredDetails } from '../../format/visualLayout';
import { formatReading, parseReading, type Reading } from '../../shared/reduceMode';
import { offeredReading, readingSetting } from '../../shared/reductionChoices';
import type { EngineService } from '../engineService';
import { listInstalledModels, manifestIn } from '../models/installedModels';
import { readSettings } from '../settings';
import { LmImage, LmMessage, LmPart, lmQuestion } from './lmConversation';
import { imageTokenEstimate } from './tokenCounts';
import { StreamedPart, ToolCallStream } from './toolCalls';
import type { ImageInput } from '../../worker/protocol';

export const VENDOR = 'prumerge';

interface ModelInfo extends vscode.LanguageModelChatInformation {
  /** The model folder. */
  readonly dir: string;
}

export class ChatModelProvider implements vscode.LanguageModelChatProvider<ModelInfo> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeLanguageModelChatInformation = this.changed.event;
  private readonly tokenizers = new Map<string, Promise<Tokenizer>>();
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly engine: EngineService,
  ) {
    const refresh = (): void => {
      this.tokenizers.clear();
      this.changed.fire();
    };
    this.subscriptions = [this.changed, engine.onDidChangeModel(refresh), engine.onDidChangeInstalledModels(refresh)];
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }

  /** The demo model, every model built into the extension's storage, and the model folder the settings name. */
  async provideLanguageModelChatInformation(): Promise<ModelInfo[]> {
    const dirs = [
      this.context.asAbsolutePath('models/demo'),
      ...(await listInstalledModels(this.engine.modelsDir)).map((m) => m.dir),
      this.engine.spec().modelDir,
    ];
    const infos: ModelInfo[] = [];
    for (const dir of new Set(dirs)) {
      const m = await manifestIn(dir);
      if (m) infos.push(modelInfo(dir, m));
    }
    return infos;
  }

  async provideLanguageModelChatResponse(
    model: ModelInfo,
    messages: readonly vscode.LanguageModelChatRequestMessage[],
    options: vscode.ProvideLanguageModelChatResponseOptions,
    progress: vscode.Progress<vscode.LanguageModelResponsePart>,
    token: vscode.CancellationToken,
  ): Promise<void> {
    try {
      const asked = messages.map(lmMessage);
      const images = asked.reduce((n, m) => n + m.parts.filter((p) => p.kind === 'image').length, 0);
      this.engine.log.appendLine(`[lm] ${model.name}: ${asked.length} messages, ${images} images`);
      const tools = options.tools ?? [];
      const q = lmQuestion(asked, tools);
      const m = await manifestIn(model.dir);
      if (!m) throw new Error(`${model.name} is no longer installed (${model.dir}): pick another model`);
      const reading = readingFor(m);
      const { maxNewTokens, temperature } = { ...readSettings(), ...requestOptions(options.modelOptions) };
      const controller = new AbortController();
      const cancel = token.onCancellationRequested(() => controller.abort());
      const pictures =
        q.images.length === 1 ? { image: bytesOf(q.images[0]!) } : q.images.length > 1 ? { images: q.images.map(bytesOf) } : {};
      // text streams on; a tool call is reported whole once its closing tag has come
      const calls = new ToolCallStream(new Set(tools.map((t) => t.name)));
      let called = 0;
      const report = (parts: StreamedPart[]): void => {
        for (const p of parts) {
          if (p.kind === 'text') {
            progress.report(new vscode.LanguageModelTextPart(p.text));
          } else {
            progress.report(new vscode.LanguageModelToolCallPart(`call_${randomUUID()}`, p.name, p.input));
            called++;
          }
        }
      };
      let r: AskResult;
      try {
        r = await this.engine.askModel(
          model.dir,
          {
            ...pictures,
            question: q.question,
            history: q.history,
            reduce: reading.reduce,
            detail: reading.detail,
            maxNewTokens,
            temperature,
          },
          { onText: (delta) => report(calls.push(delta)), signal: controller.signal },
        );
        report(calls.end());
      } finally {
        cancel.dispose();
      }
      const pictured = q.images.length === 0 ? ' (no image)' : q.images.length > 1 ? ` (${q.images.length} images)` : '';
      const reused = `, reused ${r.reusedTokens} of ${r.promptTokens} prompt tokens`;
      const toolCalls = called > 0 ? `, ${called} tool call${called === 1 ? '' : 's'}` : '';
      this.engine.log.appendLine(`[lm] ${model.name} answered with ${formatReading(reading)}${pictured}${reused}${toolCalls}`);
    } catch (e) {
      // VS Code shows the message to whoever asked: one line, no stack
      const message = messageOf(e);
      this.engine.log.appendLine(`[lm] ${model.name}: ${message}`);
      // no `cause`: VS Code hands the error to the caller through its RPC, which a cause does not survive
      // eslint-disable-next-line preserve-caught-error
      throw new Error(message);
    }
  }

  /** Text by the model's own tokenizer; an image as many tokens as it would send (docs/vscode-chat.md). */
  async provideTokenCount(model: ModelInfo, input: string | vscode.LanguageModelChatRequestMessage): Promise<number> {
    const tokenizer = await this.tokenizer(model.dir);
    const count = (text: string): number => (text ? tokenizer.encode(text, { add_special_tokens: false }).ids.length : 0);
    if (typeof input === 'string') return count(input);
    let total = 0;
    for (const part of lmMessage(input).parts) {
      if (part.kind === 'text') total += count(part.text);
      else if (part.kind === 'image') total += await this.imageTokens(model, part);
    }
    return total;
  }

  private async imageTokens(model: ModelInfo, image: LmImage): Promise<number> {
    const m = await manifestIn(model.dir);
    if (!m) return 0;
    const reading = readingFor(m);
    return imageTokenEstimate(await this.engine.imageTokensOf(model.dir, bytesOf(image), reading.detail), reading.reduce);
  }

  private tokenizer(dir: string): Promise<Tokenizer> {
    let t = this.tokenizers.get(dir);
    if (!t) {
      t = (async () => {
        const m = await manifestIn(dir);
        if (!m) throw new Error(`${dir} is not a model folder`);
        return loadTokenizer(dir, m);
      })();
      t.catch(() => this.tokenizers.delete(dir));
      this.tokenizers.set(dir, t);
    }
    return t;
  }
}

/** An image of a request as the worker takes it: its bytes, no file. */
function bytesOf(image: LmImage): ImageInput {
  return { base64: Buffer.from(image.data).toString('base64') };
}

/** A caller's `modelOptions` the engine honours: maxTokens and temperature, when they are numbers it takes. */
function requestOptions(o: { readonly [name: string]: unknown } | undefined): { maxNewTokens?: number; temperature?: number } {
  const out: { maxNewTokens?: number; temperature?: number } = {};
  const max = o?.['maxTokens'];
  if (typeof max === 'number' && Number.isSafeInteger(max) && max >= 1) out.maxNewTokens = Math.min(max, 8192);
  const t = o?.['temperature'];
  if (typeof t === 'number' && Number.isFinite(t) && t >= 0 && t <= 2) out.temperature = t;
  return out;
}

/** The reduction and detail of `prumergeVision.defaultReduction`, as far as model `m` offers them (`auto`: by its tower). */
function readingFor(m: ModelManifest): Reading {
  return parseReading(offeredReading(readingSetting(readSettings().defaultReduction, m.vision.score), offeredDetails(m.layout)));
}

function modelInfo(dir: string, m: ModelManifest): ModelInfo {
  const maxOutputTokens = Math.min(readSettings().maxNewTokens, m.decoder.maxPositions - 1);
  return {
    id: dir,
    dir,
    name: m.randomWeights && !/random weights/.test(m.name) ? `${m.name} (random weights)` : m.name,
    family: m.family?.layout ?? (m.layout.kind === 'tiles' ? 'llava_next' : 'llava'),
    version: `${m.dtype}, ${m.builder}`,
    detail: 'PruMerge Vision, on this machine',
    tooltip: m.randomWeights
      ? 'Random weights: its answers are meaningless (the demo model, or a `prumerge synth` folder).'
      : `${m.name} (${m.dtype}) from ${dir}, running locally with its visual tokens reduced.`,
    maxInputTokens: Math.max(1, m.decoder.maxPositions - maxOutputTokens),
    maxOutputTokens,
    capabilities: { imageInput: true, toolCalling: true },
  };
}

/** A message's parts as lmConversation.ts reads them. */
function lmMessage(m: vscode.LanguageModelChatRequestMessage): LmMessage {
  const parts: LmPart[] = m.content.map((p): LmPart => {
    if (p instanceof vscode.LanguageModelTextPart) return { kind: 'text', text: p.value };
    if (p instanceof vscode.LanguageModelToolCallPart) return { kind: 'toolCall', name: p.name, input: p.input };
    if (p instanceof vscode.LanguageModelToolResultPart) {
      const text = p.content.flatMap((c) => (c instanceof vscode.LanguageModelTextPart ? [c.value] : [])).join('');
      return { kind: 'toolResult', text };
    }
    if (p instanceof vscode.LanguageModelDataPart) {
      if (p.mimeType.startsWith('image/')) return { kind: 'image', mimeType: p.mimeType, data: p.data };
      if (p.mimeType.startsWith('text/')) return { kind: 'text', text: new TextDecoder().decode(p.data) };
      return { kind: 'other', what: p.mimeType };
    }
    return { kind: 'other', what: p?.constructor?.name ?? typeof p };
  });
  return { role: m.role === vscode.LanguageModelChatMessageRole.Assistant ? 'assistant' : 'user', parts };
}
