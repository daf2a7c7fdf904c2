/** The commands about images and chats: ask about an image, its heatmap, earlier chats. */
import * as vscode from 'vscode';
import { ChatViewProvider } from './chatView';
import { imagesOf } from './chatStore';
import { EngineService } from '../engineService';
import { HeatmapPanel } from './heatmapPanel';
import { IMAGE_EXTENSIONS, isImagePath } from '../imageFiles';
import { readSettings } from '../settings';

/** The Explorer's or the editor's image, or one picked from the workspace, attached to the chat. */
export async function askAboutImage(chat: ChatViewProvider, uri?: vscode.Uri): Promise<void> {
  const image = uri ?? activeImage() ?? (await pickWorkspaceImage());
  if (image) await chat.attach(image);
}

export async function showHeatmap(
  context: vscode.ExtensionContext,
  engine: EngineService,
  uri?: vscode.Uri,
  reduce?: string,
): Promise<void> {
  const image = uri ?? activeImage() ?? (await pickWorkspaceImage());
  if (!image) return;
  if (!isImagePath(image.fsPath)) {
    void vscode.window.showErrorMessage('The heatmap needs an image file (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF, SVG).');
    return;
  }
  HeatmapPanel.show(context, engine, image, reduce ?? readSettings().defaultReduction);
}

/** The workspace's saved chats, newest first: the picked one is shown again. */
export async function openSavedChat(chat: ChatViewProvider): Promise<void> {
  await chat.restored;
  if (chat.savedChats.length === 0) {
    void vscode.window.showInformationMessage('PruMerge Vision: no saved chats in this workspace yet.');
    return;
  }
  const picked = await vscode.window.showQuickPick(
    chat.savedChats.map((c) => ({
      label: c.title,
      description: imagesOf(c).join(', ') || 'no image',
      detail: `${c.answers.length} answer${c.answers.length === 1 ? '' : 's'}, ${new Date(c.updated).toLocaleString()}`,
      id: c.id,
    })),
    { title: 'Open an earlier chat', matchOnDescription: true },
  );
  if (picked) await chat.openSaved(picked.id);
}

/** The image open in the active editor tab (text editor or image preview). */
function activeImage(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input as { uri?: vscode.Uri } | undefined;
  const uri = input?.uri ?? vscode.window.activeTextEditor?.document.uri;
  return uri && isImagePath(uri.fsPath) ? uri : undefined;
}

async function pickWorkspaceImage(): Promise<vscode.Uri | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showErrorMessage('Open a folder first: PruMerge Vision reads images from the workspace.');
    return undefined;
  }
  const found = await vscode.workspace.findFiles(`**/*.{${IMAGE_EXTENSIONS.join(',')}}`, '**/node_modules/**', 2000);
  if (found.length === 0) {
    void vscode.window.showInformationMessage('No images in this workspace.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    found.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), uri })),
    { title: 'Ask about which image?', matchOnDescription: true },
  );
  return picked?.uri;
}
