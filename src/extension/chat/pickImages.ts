/** Images picked from the workspace in a quick pick: for the chat, the heatmap, and the Explorer-less. */
import * as vscode from 'vscode';
import { IMAGE_EXTENSIONS } from '../imageFiles';

export async function pickWorkspaceImages(title: string, many: boolean): Promise<vscode.Uri[]> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showErrorMessage('Open a folder first: PruMerge Vision reads images from the workspace.');
    return [];
  }
  const found = await vscode.workspace.findFiles(`**/*.{${IMAGE_EXTENSIONS.join(',')}}`, '**/node_modules/**', 2000);
  if (found.length === 0) {
    void vscode.window.showInformationMessage('No images in this workspace.');
    return [];
  }
  const items = found.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), uri }));
  if (!many) {
    const picked = await vscode.window.showQuickPick(items, { title, matchOnDescription: true });
    return picked ? [picked.uri] : [];
  }
  const picked = await vscode.window.showQuickPick(items, { title, matchOnDescription: true, canPickMany: true });
  return (picked ?? []).map((p) => p.uri);
}
