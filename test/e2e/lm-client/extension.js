// A second extension, as any other would use PruMerge Vision's models: reads lm-request.json
// from the workspace, runs its steps through vscode.lm, writes lm-result.json (test/e2e).
const vscode = require('vscode');
const { readFile, writeFile, rename } = require('node:fs/promises');
const { join } = require('node:path');

/** What VS Code hands the caller: an Error whose message may itself be an error. */
function messageOf(e) {
  if (typeof e === 'string') return e;
  if (e && typeof e.message === 'string') return e.message;
  if (e && e.message) return messageOf(e.message);
  return String(e);
}

async function models() {
  return vscode.lm.selectChatModels({ vendor: 'prumerge' });
}

/** Invokes PruMerge Vision's image tool as an agent would, outside a chat request. */
async function tool(folder, s) {
  const source = new vscode.CancellationTokenSource();
  const out = { text: '' };
  if (s.cancelAfterMs) setTimeout(() => source.cancel(), s.cancelAfterMs);
  try {
    const result = await vscode.lm.invokeTool(
      'prumergeVision_askAboutImage',
      { input: s.input, toolInvocationToken: undefined },
      source.token,
    );
    for (const part of result.content) if (part instanceof vscode.LanguageModelTextPart) out.text += part.value;
  } catch (e) {
    out.error = messageOf(e);
    out.errorName = e && e.name;
  }
  out.cancelled = source.token.isCancellationRequested;
  out.declared = vscode.lm.tools.some((t) => t.name === 'prumergeVision_askAboutImage');
  return out;
}

async function step(folder, s) {
  if (s.op === 'tool') return tool(folder, s);
  const all = await models();
  if (s.op === 'list') return all.map((m) => ({ id: m.id, name: m.name, family: m.family, maxInputTokens: m.maxInputTokens }));
  const model = all.find((m) => m.name.includes(s.model));
  if (!model) return { error: `no model named like ${s.model}` };
  const parts = [];
  if (s.image) parts.push(vscode.LanguageModelDataPart.image(await readFile(join(folder, s.image)), s.mime ?? 'image/png'));
  if (s.image2) parts.push(vscode.LanguageModelDataPart.image(await readFile(join(folder, s.image2)), 'image/png'));
  parts.push(new vscode.LanguageModelTextPart(s.question));
  const message = vscode.LanguageModelChatMessage.User(parts);
  if (s.op === 'count') return { tokens: await model.countTokens(s.question), messageTokens: await model.countTokens(message) };
  const source = new vscode.CancellationTokenSource();
  const out = { text: '', chunks: 0, chunksAfterCancel: 0 };
  try {
    const response = await model.sendRequest([message], { modelOptions: s.modelOptions ?? {} }, source.token);
    for await (const chunk of response.text) {
      out.text += chunk;
      out.chunks++;
      if (source.token.isCancellationRequested) out.chunksAfterCancel++;
      if (s.cancelAfterChunks && out.chunks === s.cancelAfterChunks) source.cancel();
    }
  } catch (e) {
    out.error = messageOf(e);
    out.errorDetail = JSON.stringify(e, Object.getOwnPropertyNames(e ?? {}));
  }
  out.cancelled = source.token.isCancellationRequested;
  return out;
}

exports.activate = (context) => {
  context.subscriptions.push(
    vscode.commands.registerCommand('lmClient.run', async () => {
      const folder = vscode.workspace.workspaceFolders[0].uri.fsPath;
      const request = JSON.parse(await readFile(join(folder, 'lm-request.json'), 'utf8'));
      const results = [];
      for (const s of request.steps) results.push(await step(folder, s));
      // written whole, then renamed: the test never reads half a file
      await writeFile(join(folder, 'lm-result.json.partial'), JSON.stringify(results));
      await rename(join(folder, 'lm-result.json.partial'), join(folder, 'lm-result.json'));
    }),
  );
};
