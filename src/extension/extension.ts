/**
 * PruMerge Vision's extension host side: commands, the chat view, the heatmap panel, the status
 * bar. Activation only registers things; the inference worker starts on the first question.
 */
import * as vscode from 'vscode';
import { ChatViewProvider } from './chat/chatView';
import { registerCommands } from './commands';
import { welcomeOnce } from './models/onboarding';
import { EngineService } from './engineService';

export function activate(context: vscode.ExtensionContext): void {
  const engine = new EngineService(context);
  const chat = new ChatViewProvider(context, engine);
  context.subscriptions.push(
    engine,
    chat,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewType, chat, { webviewOptions: { retainContextWhenHidden: false } }),
  );
  registerCommands(context, engine, chat);
  void welcomeOnce(context, engine);
}

export function deactivate(): void {}
