/** End to end: the model folder an untrusted workspace names (Restricted Mode). Needs scripts/e2e/setup.sh, as chat.test.ts. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { askAboutDiagram } from './chatActions';
import { launch, skip, step, VSCode } from './codeServer';

describe('Restricted Mode: the model folder an untrusted workspace names', { skip, timeout: 180_000 }, () => {
  const named = '/opt/from-the-repository/llava-model';
  let vs: VSCode;
  before(async () => {
    // no startup question: the folder opens in Restricted Mode, as after answering "No, I don't trust the authors"
    vs = await launch({
      trust: false,
      workspaceSettings: { 'prumergeVision.modelFolder': named },
      userSettings: { 'security.workspace.trust.startupPrompt': 'never' },
    });
  });
  after(() => vs?.close());

  it(
    'is ignored, and a warning names it and says why; the demo model answers',
    step(
      () => vs,
      'restricted',
      async () => {
        const { page } = vs;
        await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).waitFor({ timeout: 60_000 });
        const chat = await askAboutDiagram(vs);
        await chat.locator('vscode-text-area textarea').fill('What does this diagram show?');
        await chat.locator('vscode-text-area textarea').press('Enter');
        const warning = page.locator('.notifications-toasts .notification-list-item', {
          hasText: `ignores the model folder this workspace names (${named}) until you trust the workspace`,
        });
        await warning.waitFor({ timeout: 60_000 });
        assert.match(await warning.innerText(), /Using the built-in demo model instead/);
        assert.ok((await warning.locator('.monaco-button', { hasText: 'Manage Workspace Trust' }).count()) > 0);
        await chat
          .locator('article.answer .answer-text')
          .filter({ hasText: /[^…\s]/ })
          .waitFor({ timeout: 60_000 });
        await vs.shot('7-restricted-mode');
        await chat.locator('vscode-button', { hasText: 'Stop' }).click();
        await chat.locator('.stats').first().waitFor({ timeout: 60_000 });
      },
    ),
  );
});

// its own window, whose answers are short (the settings are read at start: code-server does not
// notice a settings file changed under it), so that the test waits on both answers ending and not
// on how fast this machine generates 3000 tokens twice
