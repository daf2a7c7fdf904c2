/**
 * Failures as the user reads them in the chat and the heatmap: files named relative to the workspace
 * (a pasted screenshot as "the pasted image"), and what a library said behind it in the log only.
 */
import { join } from 'node:path';
import * as vscode from 'vscode';
import { detailOf, messageOf } from '../common/errors';
import { inUserTerms } from '../common/userPaths';

/** Where a window's chats (and the screenshots pasted into them) are kept. */
export function chatStorageDir(context: vscode.ExtensionContext): string {
  // a window without a folder has no workspace storage: its chats go to the extension's own
  return context.storageUri?.fsPath ?? join(context.globalStorageUri.fsPath, 'no-workspace');
}

export function pastedImagesDir(context: vscode.ExtensionContext): string {
  return join(chatStorageDir(context), 'pasted');
}

/** `e`'s message in the user's terms; its technical detail, if any, goes to `log`. */
export function userMessage(e: unknown, log: vscode.OutputChannel, pastedDir: string): string {
  const message = inUserTerms(messageOf(e), {
    folders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
    prefixFolderName: true,
    pastedDir,
  });
  const detail = detailOf(e);
  if (detail) log.appendLine(`${message} (${detail})`);
  return message;
}
