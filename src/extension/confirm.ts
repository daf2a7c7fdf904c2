/** A modal question. */
import * as vscode from 'vscode';

/** True when the user chose `action`. */
export async function confirm(question: string, action: string): Promise<boolean> {
  return (await vscode.window.showWarningMessage(question, { modal: true }, action)) === action;
}
