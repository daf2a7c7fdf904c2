/** What a person does in the chat, as steps the e2e suites share. */
import type { FrameLocator, Locator } from 'playwright-core';
import { findFrame, VSCode } from './codeServer';

/** Right-click diagram.png (or `file`) in the Explorer -> Ask About Image...; returns the chat's frame. */
export async function askAboutDiagram(vs: VSCode, file = 'diagram.png', options: { activeBefore?: boolean } = {}): Promise<FrameLocator> {
  const { page } = vs;
  // contributions appear once the remote extension host has scanned the extensions
  await page.locator('.activitybar .action-label[aria-label^="PruMerge Vision"]').waitFor({ timeout: 60_000 });
  if (options.activeBefore !== false)
    await page
      .locator('.statusbar-item', { hasText: 'PruMerge' })
      .waitFor({ timeout: 60_000 })
      .catch(() => undefined);
  // the side bar may show the chat instead: the Explorer's icon brings it back (clicking the icon of
  // the container in front would hide the side bar instead)
  const explorer = page.locator('.explorer-folders-view');
  if (!(await explorer.isVisible())) await page.locator('.activitybar .action-label[aria-label^="Explorer"]').click();
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: file });
  await row.waitFor({ timeout: 60_000 });
  const item = page.locator('.context-view .action-label', { hasText: 'Ask About Image...' });
  // after a reload the Explorer can be shown before the extension host has registered our menu
  // entries: a menu opened then lacks the item, so it is closed and opened again until it has it
  const end = Date.now() + 60_000;
  for (;;) {
    await row.click({ button: 'right' });
    await page.locator('.context-view .monaco-menu').waitFor();
    if (
      await item.waitFor({ timeout: 2_000 }).then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > end) throw new Error(`the Explorer's context menu for ${file} never offered Ask About Image...`);
    await page.keyboard.press('Escape');
    await page.locator('.context-view .monaco-menu').waitFor({ state: 'hidden' });
  }
  await vs.shot('0-context-menu');
  await item.hover();
  await item.click();
  // a click that lands while the menu is still settling can leave it open with the item
  // highlighted: Enter then runs the highlighted item, as it would for a keyboard user
  const menu = page.locator('.context-view .monaco-menu');
  await menu.waitFor({ state: 'hidden', timeout: 2_000 }).catch(async () => {
    await page.keyboard.press('Enter');
    await menu.waitFor({ state: 'hidden', timeout: 5_000 });
  });
  const chat = await findFrame(page, 'section.conversation');
  await chat.locator('.image-name').filter({ hasText: file }).waitFor({ timeout: 60_000 });
  return chat;
}

/** Asks, waits for the first words, presses Stop and waits for the figures; returns the answer. */
export async function askAndStop(chat: FrameLocator, question: string): Promise<Locator> {
  await chat.locator('vscode-text-area textarea').fill(question);
  await chat.locator('vscode-text-area textarea').press('Enter');
  await chat
    .locator('article.answer.streaming .answer-text')
    .filter({ hasText: /[^…\s]/ })
    .waitFor({ timeout: 120_000 });
  await chat.locator('vscode-button', { hasText: 'Stop' }).click();
  const last = chat.locator('article.answer').last();
  await last.locator('.stats').waitFor({ timeout: 60_000 });
  return last;
}
