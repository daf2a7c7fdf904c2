/**
 * A language-model tool for agents in VS Code's chat, whatever model they run (text-only ones
 * too): ask the local vision model about an image file, and get its answer with the visual-token
 * counts. The model in use and the chat's default reduction answer it, in the shared worker.
 * docs/vscode-chat.md, "The tool".
 */
import * as vscode from 'vscode';
import { formatReading, parseReading } from '../../shared/reduceMode';
import { readingSetting } from '../../shared/reductionChoices';
import type { EngineService } from '../engineService';
import { readSettings } from '../settings';
import { checkToolInput, ImageToolError, ImageToolInput, locateImage } from './imageToolInput';

export const IMAGE_TOOL = 'prumergeVision_askAboutImage';

export class ImageTool implements vscode.LanguageModelTool<ImageToolInput> {
  /** Files outside the workspace that VS Code asked the user to confirm: only these may be read. */
  private readonly confirmed = new Set<string>();

  constructor(private readonly engine: EngineService) {}

  prepareInvocation(options: vscode.LanguageModelToolInvocationPrepareOptions<ImageToolInput>): vscode.PreparedToolInvocation {
    const { file, outside } = locateImage(checkToolInput(options.input), folders());
    const name = vscode.workspace.asRelativePath(file);
    if (!outside) return { invocationMessage: `Asking the local vision model about ${name}` };
    this.confirmed.add(file);
    return {
      invocationMessage: `Asking the local vision model about ${file}`,
      confirmationMessages: {
        title: 'Read an image outside the workspace?',
        message: new vscode.MarkdownString(`PruMerge Vision will read \`${file}\`, which is outside the open folders, and describe it.`),
      },
    };
  }

  async invoke(
    options: vscode.LanguageModelToolInvocationOptions<ImageToolInput>,
    token: vscode.CancellationToken,
  ): Promise<vscode.LanguageModelToolResult> {
    const input = checkToolInput(options.input);
    const { file, outside } = locateImage(input, folders());
    if (outside && !this.confirmed.delete(file)) {
      throw new ImageToolError(`${file} is outside the workspace: it is read only after you confirm it in VS Code's chat`);
    }
    const reading = parseReading(readingSetting(readSettings().defaultReduction, this.engine.modelFacts()?.score));
    const controller = new AbortController();
    const cancel = token.onCancellationRequested(() => controller.abort());
    try {
      const { maxNewTokens, temperature } = readSettings();
      const model = await this.engine.load();
      // standalone: the window's own chat goes on undisturbed
      const r = await this.engine.askModel(
        this.engine.spec().modelDir,
        { image: file, question: input.question, reduce: reading.reduce, detail: reading.detail, maxNewTokens, temperature },
        { signal: controller.signal },
      );
      if (r.stopReason === 'cancelled') throw new vscode.CancellationError();
      const counts = `${r.visual.kept} of ${r.visual.total} visual tokens, ${formatReading(reading)}`;
      this.engine.log.appendLine(`[tool] ${vscode.workspace.asRelativePath(file)}: ${counts}`);
      return new vscode.LanguageModelToolResult([new vscode.LanguageModelTextPart(`${r.answer}\n\n(${model.name}: ${counts})`)]);
    } finally {
      cancel.dispose();
    }
  }
}

function folders(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
}
