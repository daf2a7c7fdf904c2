/**
 * PruMerge Vision's extension host side: commands, the chat view, the heatmap panel, the status
 * bar, the language-model provider. Activation only registers things; the inference worker starts
 * on the first question.
 */
import * as vscode from 'vscode';
import { ChatViewProvider } from './chat/chatView';
import { registerCommands } from './commands';
import { welcomeOnce } from './models/onboarding';
import { EngineService } from './engineService';
import { ChatModelProvider, VENDOR } from './lm/chatModelProvider';
import { IMAGE_TOOL, ImageTool } from './lm/imageTool';

export function activate(context: vscode.ExtensionContext): void {
  const engine = new EngineService(context);
  const chat = new ChatViewProvider(context, engine);
  context.subscriptions.push(
    engine,
    chat,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewType, chat, { webviewOptions: { retainContextWhenHidden: false } }),
  );
  // the models in VS Code's own chat and for other extensions (vscode.lm)
  const models = new ChatModelProvider(context, engine);
  context.subscriptions.push(models, vscode.lm.registerLanguageModelChatProvider(VENDOR, models));
  // for agents in VS Code's chat on any model: read an image file with the local model
  context.subscriptions.push(vscode.lm.registerTool(IMAGE_TOOL, new ImageTool(engine)));
  registerCommands(context, engine, chat);
  void welcomeOnce(context, engine);
}

export function deactivate(): void {}
