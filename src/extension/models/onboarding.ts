/** Getting started: the walkthrough, and the first-start notification while the demo model is in use. */
import * as vscode from 'vscode';
import { EngineService } from '../engineService';

export function openWalkthrough(): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openWalkthrough', `${EXTENSION_ID}#gettingStarted`, false);
}

const EXTENSION_ID = 'prumerge.prumerge-vision';
const WELCOMED = 'prumergeVision.welcomed';

/** Once per installation, while the demo model is in use: what it is, and the way to a real one. */
export async function welcomeOnce(context: vscode.ExtensionContext, engine: EngineService): Promise<void> {
  if (context.globalState.get(WELCOMED) || !engine.spec().demo) return;
  await context.globalState.update(WELCOMED, true);
  const [real, start] = ['Get a Real Model', 'Get Started'];
  const picked = await vscode.window.showInformationMessage(
    'PruMerge Vision answers with its demo model until you choose another: it has random weights, so its answers are meaningless. A real model is a download and a build away.',
    real,
    start,
  );
  if (picked === real) await vscode.commands.executeCommand('prumergeVision.downloadModel');
  else if (picked === start) await openWalkthrough();
}
