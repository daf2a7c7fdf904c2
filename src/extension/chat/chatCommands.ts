/** The commands about images and chats: ask about an image, its heatmap, earlier chats. */
import * as vscode from 'vscode';
import { ChatViewProvider } from './chatView';
import { imagesOf } from './chatStore';
import { EngineService } from '../engineService';
import { HeatmapPanel } from './heatmapPanel';
import { isImagePath } from '../imageFiles';
import { MAX_IMAGES, readingSetting } from '../../shared/reductionChoices';
import { pickWorkspaceImages } from './pickImages';
import { readSettings } from '../settings';

/**
 * The Explorer's images (those selected, when several are), the editor's, or those picked from the
 * workspace, attached to the chat in place of what it holds.
 */
export async function askAboutImage(chat: ChatViewProvider, uri?: vscode.Uri, selected?: unknown): Promise<void> {
  const images = selectedImages(uri, selected) ?? (await pickWorkspaceImages('Ask about which images?', true));
  if (images.length > 0) await chat.attach(images, { add: false });
}

/**
 * The heatmap of the Explorer's images (one tab each), the editor's, or one picked. The chat passes
 * its images as `selected`, the reading as `reduce` (a string in place of `selected` also reads so)
 * and the answer's question, which CDPruner weighs the patches by.
 */
export async function showHeatmap(
  context: vscode.ExtensionContext,
  engine: EngineService,
  uri?: vscode.Uri,
  selected?: unknown,
  reduce?: string,
  question?: unknown,
): Promise<void> {
  const images = selectedImages(uri, selected) ?? (await pickWorkspaceImages('The heatmap of which image?', false));
  if (images.length === 0) return;
  if (!images.every((i) => isImagePath(i.fsPath))) {
    void vscode.window.showErrorMessage('The heatmap needs image files (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF, SVG).');
    return;
  }
  const reading =
    reduce ??
    (typeof selected === 'string' ? selected : undefined) ??
    readingSetting(readSettings().defaultReduction, engine.modelFacts()?.score);
  HeatmapPanel.show(context, engine, images.slice(0, MAX_IMAGES), reading, typeof question === 'string' ? question : undefined);
}

/** The images a command was run on: the Explorer's selection when it holds more than one, else `uri`, else the editor's. */
function selectedImages(uri: vscode.Uri | undefined, selected: unknown): vscode.Uri[] | undefined {
  const many = Array.isArray(selected) ? selected.filter((u): u is vscode.Uri => u instanceof vscode.Uri) : [];
  if (many.length > 1) return many;
  const one = uri ?? activeImage();
  return one ? [one] : undefined;
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
