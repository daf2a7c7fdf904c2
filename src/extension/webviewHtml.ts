/**
 * The HTML shell of every webview: a strict Content-Security-Policy with a fresh nonce, local
 * resources only through asWebviewUri, initial state in a data- attribute (no inline script).
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

export interface WebviewPage {
  readonly title: string;
  /** Paths under the extension folder. */
  readonly script: string;
  readonly styles: readonly string[];
  readonly body: string;
  readonly initialState?: unknown;
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: WebviewPage): string {
  const nonce = randomBytes(16).toString('base64');
  const uri = (path: string): string => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...path.split('/'))).toString();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data: blob:`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const state = page.initialState === undefined ? '' : ` data-state="${escapeAttribute(JSON.stringify(page.initialState))}"`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  ${page.styles.map((s) => `<link rel="stylesheet" href="${uri(s)}">`).join('\n  ')}
  <title>${escapeAttribute(page.title)}</title>
</head>
<body${state}>
${page.body}
  <script type="module" nonce="${nonce}" src="${uri(page.script)}"></script>
</body>
</html>`;
}

function escapeAttribute(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
