/**
 * The extension's commands, registered in one place so that the entry point reads as a list of
 * what the extension contributes; the bodies live with their concern (chatCommands.ts,
 * modelCommands.ts, onboarding.ts).
 */
import * as vscode from 'vscode';
import { askAboutImage, openSavedChat, showHeatmap } from './chat/chatCommands';
import { ChatViewProvider } from './chat/chatView';
import { confirm } from './confirm';
import { EngineService } from './engineService';
import { buildFromCheckpointFolder, downloadModel, manageModels, showModelActions, useModelFolder } from './models/modelCommands';
import { openWalkthrough } from './models/onboarding';
import { setModelFolder } from './settings';

export function registerCommands(context: vscode.ExtensionContext, engine: EngineService, chat: ChatViewProvider): void {
  const command = (id: string, run: (...args: never[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, run));
  };
  // from the Explorer, the second argument is its selection
  command('prumergeVision.askAboutImage', (uri?: vscode.Uri, selected?: unknown) => askAboutImage(chat, uri, selected));
  command('prumergeVision.showHeatmap', (uri?: vscode.Uri, selected?: unknown, reduce?: string, question?: unknown) =>
    showHeatmap(context, engine, uri, selected, reduce, question),
  );
  command('prumergeVision.newChat', () => chat.newChat());
  command('prumergeVision.openChat', () => openSavedChat(chat));
  command('prumergeVision.openWalkthrough', () => openWalkthrough());
  command('prumergeVision.clearChatHistory', async () => {
    const question = `Delete all ${chat.savedChats.length} saved chats of this workspace, and the pasted images they refer to?`;
    if (await confirm(question, 'Clear Chat History')) await chat.clearHistory();
  });
  command('prumergeVision.restartWorker', async () => {
    await engine.restart();
    void vscode.window.showInformationMessage('PruMerge Vision: the inference process will start again with the next question.');
  });
  command('prumergeVision.useModelFolder', () => useModelFolder(engine));
  command('prumergeVision.useDemoModel', () => setModelFolder(''));
  command('prumergeVision.buildModelFromCheckpoint', () => buildFromCheckpointFolder(context, engine));
  command('prumergeVision.downloadModel', () => downloadModel(context, engine));
  command('prumergeVision.showModelActions', () => showModelActions(engine));
  command('prumergeVision.manageModels', () => manageModels(engine));
  command('prumergeVision.showLog', () => engine.log.show());
}
