/**
 * End to end in a real VS Code: code-server 4.139 (VS Code 1.139, on Node 24) with the packaged .vsix
 * installed, driven through Debian's chromium by playwright-core (docs/vscode-e2e.md).
 * It walks what a person does: right-click a PNG -> Ask About Image..., ask, watch the answer
 * stream with its token counts, Stop, ask a follow-up, open the heatmap, hover a kept patch,
 * switch the reduction mode. Assertions are on the DOM inside the webviews; screenshots go to
 * test-results/e2e/ for people to look at.
 *
 * Needs `bash scripts/e2e/setup.sh` once (CI runs it); skipped otherwise, unless E2E_REQUIRED=1.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import sharp from 'sharp';
import { askAboutDiagram, askAndStop } from './chatActions';
import { findFrame, launch, runCommand, savedChats, skip, step, VSCode } from './codeServer';

describe('the extension in a real VS Code (code-server + chromium)', { skip, timeout: 240_000 }, () => {
  let vs: VSCode;
  let page: Page;
  let chat: FrameLocator;
  const shot = (name: string): Promise<void> => vs.shot(name);
  const frameWith = (selector: string): Promise<FrameLocator> => findFrame(page, selector);
  /** Reloads the window and returns the chat the side bar shows again (opened if it does not). */
  const reloadToChat = async (): Promise<FrameLocator> => {
    await page.reload();
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.locator('.activitybar .action-label[aria-label^="PruMerge Vision"]').waitFor({ timeout: 60_000 });
    return findFrame(page, 'section.conversation').catch(async () => {
      await page.locator('.activitybar .action-label[aria-label^="PruMerge Vision"]').click();
      return frameWith('section.conversation');
    });
  };

  before(async () => {
    vs = await launch({ trust: true });
    page = vs.page;
  });
  after(() => vs?.close());

  it(
    'right-click a PNG -> Ask About Image... opens the chat with the image attached',
    step(
      () => vs,
      'attach',
      async () => {
        chat = await askAboutDiagram(vs);
        await chat.locator('.notice').filter({ hasText: 'meaningless' }).waitFor();
        // the worker reads the image as soon as it is attached, before any question
        await chat.locator('.image-reading').filter({ hasText: 'Image read' }).waitFor({ timeout: 120_000 });
        await shot('1-attached');
      },
    ),
  );

  it(
    'streams an answer with its token counts, and Stop ends it',
    step(
      () => vs,
      'stream',
      async () => {
        await chat.locator('vscode-text-area textarea').fill('What does this diagram show?');
        await chat.locator('vscode-text-area textarea').press('Enter');
        await chat.locator('article.answer.streaming').first().waitFor({ timeout: 60_000 });
        await chat
          .locator('article.answer.streaming .answer-text')
          .filter({ hasText: /[^…\s]/ })
          .waitFor({ timeout: 60_000 });
        await shot('2-streaming');
        await chat.locator('vscode-button', { hasText: 'Stop' }).click();
        const stats = chat.locator('.stats').first();
        await stats.waitFor({ timeout: 60_000 });
        const text = await stats.innerText();
        assert.match(text, /\d+ of 576 visual tokens, \d+(\.\d)?x fewer/);
        assert.match(text, /first token \d+ ms/);
        assert.match(text, /stopped/);
        assert.match(text, /image read from memory/, 'the question found the image read ahead');
      },
    ),
  );

  it(
    'answers a follow-up in the same conversation',
    step(
      () => vs,
      'follow-up',
      async () => {
        await chat.locator('vscode-text-area textarea').fill('And the green box?');
        await chat.locator('vscode-text-area textarea').press('Enter');
        await chat.locator('.question').nth(1).filter({ hasText: 'And the green box?' }).waitFor({ timeout: 60_000 });
        await chat
          .locator('article.answer.streaming .answer-text')
          .filter({ hasText: /[^…\s]/ })
          .waitFor({ timeout: 60_000 });
        await chat.locator('vscode-button', { hasText: 'Stop' }).click();
        await chat.locator('.stats').nth(1).waitFor({ timeout: 60_000 });
        await shot('3-follow-up');
        // a screen reader hears the ended answer once (the transcript itself is not live), and the
        // focus is back in the question box after Stop
        const heard = await chat.locator('.announcer').innerText();
        const shown = await chat.locator('article.answer').nth(1).locator('.answer-text').innerText();
        assert.ok(heard.startsWith('Answer (stopped): '), heard);
        assert.equal(heard.replace(/\W/g, '').includes(shown.replace(/\W/g, '').slice(0, 20)), true, `${heard} | ${shown}`);
        assert.equal(await chat.locator('section.conversation').getAttribute('aria-live'), null);
        assert.equal(await chat.locator('.stage[aria-live]').count(), 0);
        assert.equal(await chat.locator('vscode-text-area textarea:focus').count(), 1, 'focus in the question box');
      },
    ),
  );

  it(
    'hiding the side bar mid-answer loses nothing: shown again, the answer is there, and it went on meanwhile',
    step(
      () => vs,
      'hide-show',
      async () => {
        await chat.locator('vscode-text-area textarea').fill('Describe every box.');
        await chat.locator('vscode-text-area textarea').press('Enter');
        const streaming = chat.locator('article.answer.streaming .answer-text');
        await streaming.filter({ hasText: /\S.{19}/ }).waitFor({ timeout: 60_000 });
        const before = (await streaming.innerText()).replace(/\s+/g, ' ').trim();
        await page.keyboard.press('Control+B'); // the webview's page is dropped while hidden
        await page.locator('.part.sidebar').waitFor({ state: 'hidden', timeout: 10_000 });
        await page.waitForTimeout(1_000); // the answer goes on meanwhile
        await page.keyboard.press('Control+B');
        chat = await frameWith('section.conversation');
        const again = chat.locator('.question').filter({ hasText: 'Describe every box.' });
        await again.waitFor({ timeout: 60_000 });
        const answer = chat.locator('article.answer').last().locator('.answer-text');
        await answer.filter({ hasText: /\S/ }).waitFor({ timeout: 60_000 });
        const after = (await answer.innerText()).replace(/\s+/g, ' ').trim();
        await shot('3b-shown-again');
        // Stop, unless the answer ended meanwhile (how long it runs depends on the machine): in the page, at once
        await chat.locator('vscode-button', { hasText: 'Stop' }).evaluate((b) => {
          const stop = b as unknown as { hidden: boolean; click(): void };
          if (!stop.hidden) stop.click();
        });
        await chat.locator('article.answer').last().locator('.stats').waitFor({ timeout: 60_000 });
        assert.ok(after.length > before.length, `the answer grew while hidden (${before.length} -> ${after.length} characters)`);
        // letters and digits only: markdown may render a half-written answer's * or _ differently
        const words = (t: string): string => t.replace(/[^\p{L}\p{N}]/gu, '').slice(0, 10);
        assert.equal(words(after), words(before), 'and it is the same answer');
      },
    ),
  );

  it(
    'opens the heatmap, highlights what merged into a hovered kept patch, and switches modes',
    step(
      () => vs,
      'heatmap',
      async () => {
        await chat.locator('.stats').first().locator('vscode-button', { hasText: 'Heatmap' }).click();
        const panel = await frameWith('.summary');
        await panel
          .locator('.summary')
          .filter({ hasText: /keeps \d+ of 576 visual tokens/ })
          .waitFor({ timeout: 60_000 });
        // the tower ran once, when the image was attached: the heatmap reads its outputs from memory
        assert.match(await panel.locator('.summary').innerText(), /image read from memory/);
        await panel.locator('rect.cell.kept').first().hover();
        await panel
          .locator('.detail')
          .filter({ hasText: /patches merged into it/ })
          .waitFor();
        assert.ok((await panel.locator('rect.cell.merged').count()) > 0, 'merged patches are highlighted');
        await shot('4-heatmap');
        // by keyboard alone: the grid takes the focus, arrows move it, Enter pins what merged, Escape clears
        const said = (pattern: RegExp) => panel.locator('.detail').filter({ hasText: pattern }).waitFor({ timeout: 10_000 });
        await panel.locator('svg.overlay').first().focus();
        await said(/^patch row 1, column 1: /);
        await page.keyboard.press('ArrowRight');
        await said(/^patch row 1, column 2: /);
        await page.keyboard.press('ArrowDown');
        await said(/^patch row 2, column 2: /);
        await page.keyboard.press('End');
        await said(/^patch row 2, column 24: /);
        await page.keyboard.press('Control+End');
        await said(/^patch row 24, column 24: /);
        const kept = Number(await panel.locator('rect.cell.kept').first().getAttribute('data-patch'));
        await page.keyboard.press('Control+Home');
        for (let i = 0; i < Math.floor(kept / 24); i++) await page.keyboard.press('ArrowDown');
        for (let i = 0; i < kept % 24; i++) await page.keyboard.press('ArrowRight');
        await said(new RegExp(`^patch row ${Math.floor(kept / 24) + 1}, column ${(kept % 24) + 1}: kept`));
        await page.keyboard.press('Enter');
        await said(/patches merged into it\. Pinned: Escape clears\.$/);
        assert.ok((await panel.locator('rect.cell.merged').count()) > 0, 'Enter shows the merged patches');
        await page.keyboard.press('Escape');
        await said(/patches merged into it\.$/);
        assert.equal(await panel.locator('rect.cell.merged').count(), 0, 'Escape clears them');
        await panel.locator('vscode-dropdown').click();
        await panel.locator('vscode-option[value="prumerge+"]').click();
        await panel
          .locator('.summary')
          .filter({ hasText: /prumerge\+ keeps \d+ of 576/ })
          .waitFor({ timeout: 60_000 });
        assert.ok((await panel.locator('rect.cell.spatial').count()) > 0, 'the spatial supplement is marked');
        await shot('5-heatmap-prumerge-plus');
      },
    ),
  );

  it(
    'exports the heatmap as a PNG through the save dialog',
    step(
      () => vs,
      'export',
      async () => {
        const panel = await frameWith('.summary');
        await panel.locator('vscode-button', { hasText: 'Export PNG' }).click();
        // code-server's save dialog is VS Code's own quick input, prefilled with the suggested path
        const input = page.locator('.quick-input-widget input');
        await input.waitFor({ timeout: 30_000 });
        // the dialog fills in the folder first, then the suggested name
        const end = Date.now() + 15_000;
        while (!/diagram-visual-tokens\.png$/.test(await input.inputValue()) && Date.now() < end) await page.waitForTimeout(200);
        assert.equal(await input.inputValue(), join(vs.workspace, 'diagram-visual-tokens.png'));
        await input.press('Enter');
        await page
          .locator('.notifications-toasts .notification-list-item', { hasText: 'Saved diagram-visual-tokens.png' })
          .waitFor({ timeout: 60_000 });
        const saved = await sharp(join(vs.workspace, 'diagram-visual-tokens.png')).metadata();
        assert.equal(saved.format, 'png');
        assert.ok((saved.width ?? 0) >= 336 && (saved.height ?? 0) >= 336, `${saved.width} x ${saved.height}`);
      },
    ),
  );

  it(
    'a window reload keeps the chat: the transcript and the image are back, and a follow-up answers',
    step(
      () => vs,
      'reload',
      async () => {
        const questions = await chat.locator('.question').allInnerTexts();
        assert.ok(questions.length >= 3, `${questions.length} questions before the reload`);
        chat = await reloadToChat();
        await chat.locator('.image-name').filter({ hasText: 'diagram.png' }).waitFor({ timeout: 60_000 });
        await chat
          .locator('.question')
          .nth(questions.length - 1)
          .waitFor({ timeout: 60_000 });
        assert.deepEqual(await chat.locator('.question').allInnerTexts(), questions);
        await shot('9-reloaded');
        const last = await askAndStop(chat, 'What is on the left?');
        assert.match(await last.locator('.note').innerText(), /Restored from the saved chat: the image was encoded again/);
        await shot('10-follow-up-after-reload');
      },
    ),
  );

  it(
    'after a reload, Ask About Image on another picture asks about that picture, in a new chat',
    step(
      () => vs,
      'reload-other-image',
      async () => {
        // the Explorer in front: after the reload the extension sleeps until the command wakes it, so
        // the saved chat (about diagram.png) is read while screenshot.png is being attached
        const explorer = page.locator('.explorer-folders-view');
        const showExplorer = async (): Promise<void> => {
          // clicking the icon of the container in front would hide the side bar instead
          if (!(await explorer.isVisible())) await page.locator('.activitybar .action-label[aria-label^="Explorer"]').click();
          await explorer.waitFor({ timeout: 60_000 });
        };
        await showExplorer();
        await page.waitForTimeout(2_000); // for the workbench to store which view is in front
        await page.reload();
        await page.locator('.activitybar .action-label[aria-label^="PruMerge Vision"]').waitFor({ timeout: 60_000 });
        await showExplorer(); // where the workbench brought the chat back after all, the restore is done before the command
        chat = await askAboutDiagram(vs, 'screenshot.png', { activeBefore: false });
        await askAndStop(chat, 'What is in this screenshot?');
        await shot('10b-other-image-after-reload');
        assert.match(await chat.locator('.image-name').innerText(), /screenshot\.png/);
        assert.deepEqual(
          await chat.locator('.question').allInnerTexts(),
          ['What is in this screenshot?'],
          'a new chat, not the restored one',
        );
        assert.equal(await chat.locator('.note').filter({ hasText: 'Restored from the saved chat' }).count(), 0);
      },
    ),
  );

  it(
    'another picture attached to a chat starts a new chat; the earlier one keeps its answers, whose heatmap is of their image',
    step(
      () => vs,
      'other-image',
      async () => {
        // the chat on screen is about screenshot.png (the step before)
        chat = await askAboutDiagram(vs, 'diagram.png');
        await chat
          .locator('.conversation .note')
          .filter({ hasText: 'A new chat about diagram.png. The chat about screenshot.png is kept' })
          .waitFor({ timeout: 30_000 });
        assert.equal(await chat.locator('.question').count(), 0, 'no answer about screenshot.png under diagram.png');
        await runCommand(page, 'PruMerge Vision: Open an Earlier Chat...');
        const earlier = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'What is in this screenshot?' });
        await earlier.first().waitFor({ timeout: 30_000 });
        assert.match(await earlier.first().innerText(), /screenshot\.png/, 'the list names the image the chat holds');
        await earlier.first().click();
        chat = await frameWith('section.conversation');
        await chat.locator('.question').filter({ hasText: 'What is in this screenshot?' }).waitFor({ timeout: 30_000 });
        await chat.locator('.stats').first().locator('vscode-button', { hasText: 'Heatmap' }).click();
        await page.locator('.tab', { hasText: 'Visual tokens: screenshot.png' }).waitFor({ timeout: 60_000 });
        await shot('10c-earlier-chat-heatmap');
      },
    ),
  );

  it(
    'Stop during the first answer of Compare: the reduced answer says it did not run',
    step(
      () => vs,
      'compare-stop',
      async () => {
        await chat.locator('vscode-text-area textarea').fill('Compare what you see.');
        await chat.locator('vscode-button', { hasText: 'Compare' }).click();
        const pair = chat.locator('.exchange').last();
        await pair
          .locator('article.answer.streaming .answer-text')
          .filter({ hasText: /[^…\s]/ })
          .waitFor({ timeout: 120_000 });
        await chat.locator('vscode-button', { hasText: 'Stop' }).click();
        await pair.locator('article.answer').first().locator('.stats').waitFor({ timeout: 60_000 });
        await chat.locator('vscode-button', { hasText: 'Stop' }).waitFor({ state: 'hidden', timeout: 60_000 });
        const first = await pair.locator('article.answer').first().locator('.stats').innerText();
        assert.match(first, /all 576 visual tokens/);
        assert.equal(await pair.locator('article.answer').count(), 2, 'both answers of the comparison are shown');
        const second = pair.locator('article.answer').nth(1);
        // Stop lands in the first answer unless it had ended just before (3000 tokens allowed): then in the second
        if (/stopped/.test(first)) assert.match(await second.innerText(), /Not run: Stop was pressed before this answer began/);
        else assert.match(await second.locator('.stats').innerText(), /stopped/);
        await shot('10d-compare-stopped');
      },
    ),
  );

  it(
    'a reload while an answer streams keeps every word that was shown',
    step(
      () => vs,
      'reload-streaming',
      async () => {
        await chat.locator('vscode-text-area textarea').fill('Describe the whole screen in detail.');
        await chat.locator('vscode-text-area textarea').press('Enter');
        const streaming = chat.locator('article.answer.streaming .answer-text');
        await streaming.filter({ hasText: /\S.{39}/ }).waitFor({ timeout: 120_000 });
        const words = (t: string): string => t.replace(/[^\p{L}\p{N}]/gu, '');
        const shown = words(await streaming.innerText());
        // the host saves what streams at a bounded rate: wait until what was shown is on disk (an event, not a time)
        const end = Date.now() + 60_000;
        const saved = (): string => {
          const answers = savedChats(vs)?.chats[0]?.answers ?? [];
          return words(answers.at(-1)?.text ?? '');
        };
        while (!saved().startsWith(shown)) {
          assert.ok(Date.now() < end, `chats.json never held the ${shown.length} characters shown (it has ${saved().length})`);
          await page.waitForTimeout(100);
        }
        chat = await reloadToChat();
        const restored = chat.locator('.exchange').last().locator('article.answer');
        await restored.locator('.answer-text').filter({ hasText: /\S/ }).waitFor({ timeout: 60_000 });
        const back = words(await restored.locator('.answer-text').innerText());
        assert.ok(back.startsWith(shown), `restored "${back.slice(0, 80)}" lacks what was shown: "${shown.slice(0, 80)}"`);
        await shot('10e-reloaded-mid-answer');
      },
    ),
  );

  it(
    'a damaged image is said so when attached, in plain words; its heatmap fails and Export PNG stays disabled; a tiny image is drawn large',
    step(
      () => vs,
      'bad-images',
      async () => {
        const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 9, g: 9, b: 9 } } })
          .png()
          .toBuffer();
        png.fill(0xff, 12, 29); // a corrupt header
        writeFileSync(join(vs.workspace, 'corrupt.png'), png);
        await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 200, g: 30, b: 30 } } })
          .png()
          .toFile(join(vs.workspace, 'tiny.png'));
        chat = await askAboutDiagram(vs, 'tiny.png');
        await chat
          .locator('.image-warning')
          .filter({ hasText: 'tiny.png is 4 x 4 pixels, far below the 336 x 336' })
          .waitFor({ timeout: 60_000 });
        const thumb = chat.locator('img.thumbnail.pixelated');
        await thumb.waitFor({ timeout: 30_000 });
        assert.ok((await thumb.evaluate((img) => img.getBoundingClientRect().width)) >= 96, 'drawn large enough to see');
        await chat.locator('.image vscode-button', { hasText: 'Show heatmap' }).click();
        const tinyPanel = await frameWith('img.image.pixelated');
        await tinyPanel
          .locator('.summary')
          .filter({ hasText: /keeps \d+ of 576/ })
          .waitFor({ timeout: 60_000 });
        assert.ok((await tinyPanel.locator('img.image').evaluate((img) => img.getBoundingClientRect().width)) >= 300);
        assert.equal(await tinyPanel.locator('.key.removed').count(), 0, 'no unpadding in the legend of LLaVA-1.5');
        await shot('10h-tiny-image');
        const groups = await page.locator('.editor-group-container').count();

        const damaged = 'corrupt.png is damaged or truncated: re-export or re-download it';
        chat = await askAboutDiagram(vs, 'corrupt.png');
        await chat.locator('.image-warning').filter({ hasText: damaged }).waitFor({ timeout: 60_000 });
        await chat.locator('.no-preview').waitFor({ timeout: 30_000 });
        await chat.locator('vscode-text-area textarea').fill('What is this?');
        await chat.locator('vscode-text-area textarea').press('Enter');
        const error = chat.locator('article.answer .error');
        await error.waitFor({ timeout: 60_000 });
        assert.equal(await error.innerText(), damaged, 'named as in the workspace, no decoder text');
        await shot('10f-damaged-image');
        await chat.locator('.image vscode-button', { hasText: 'Show heatmap' }).click();
        await page.locator('.tab', { hasText: 'Visual tokens: corrupt.png' }).waitFor({ timeout: 60_000 });
        const panel = await frameWith('.summary .error');
        assert.equal(await panel.locator('.summary .error').innerText(), damaged);
        assert.equal(await panel.locator('vscode-button', { hasText: 'Export PNG' }).getAttribute('disabled'), '', 'nothing to export');
        assert.equal(await page.locator('.editor-group-container').count(), groups, 'the heatmap joined the group of the one before');
        await shot('10g-heatmap-failed');
      },
    ),
  );

  it(
    'several images: Add image picks a second, the answer gives the counts of each, the heatmap has a tab per image, x removes one',
    step(
      () => vs,
      'several-images',
      async () => {
        chat = await askAboutDiagram(vs, 'diagram.png');
        await chat.locator('.image vscode-button', { hasText: 'Add image' }).click();
        const input = page.locator('.quick-input-widget input.input');
        await input.waitFor({ timeout: 30_000 });
        await input.fill('screenshot.png');
        const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'screenshot.png' }).first();
        await row.waitFor({ timeout: 30_000 });
        // a pick of several: a click on the row's label ticks it, Enter takes what is ticked
        await row.locator('label.quick-input-list-label').click();
        await input.press('Enter');
        const attached = chat.locator('li.attached-image');
        await attached.nth(1).filter({ hasText: 'screenshot.png' }).waitFor({ timeout: 60_000 });
        assert.deepEqual(await attached.locator('.image-name').allInnerTexts(), ['diagram.png', 'screenshot.png']);
        // the demo is LLaVA-1.5: trained on one image per conversation
        await chat.locator('.image-warning').filter({ hasText: 'trained on one image per conversation' }).waitFor({ timeout: 30_000 });
        await shot('11a-two-images');

        const answer = await askAndStop(chat, 'What changed between these two?');
        // LLaVA-1.5's 24 x 24 patches each
        assert.match(
          await answer.locator('.stats').innerText(),
          /\d+ of 1152 visual tokens, [\d.]+x fewer \(diagram\.png: \d+ of 576, screenshot\.png: \d+ of 576\)/,
        );
        await shot('11b-two-images-answer');

        await answer.locator('.stats vscode-button', { hasText: 'Heatmap' }).click();
        // each tab is its image as the answer read it: the same count as the answer's figures
        const counts = /diagram\.png: (\d+) of 576, screenshot\.png: (\d+) of 576/.exec(await answer.locator('.stats').innerText())!;
        const panel = await frameWith('.tabs [role=tab]');
        const tabs = panel.locator('.tabs [role=tab]');
        assert.deepEqual(await tabs.allInnerTexts(), ['diagram.png', 'screenshot.png']);
        await panel
          .locator('.summary')
          .filter({ hasText: `diagram.png: prumerge keeps ${counts[1]} of 576` })
          .waitFor({ timeout: 60_000 });
        await tabs.nth(0).press('ArrowRight');
        await panel
          .locator('.summary')
          .filter({ hasText: `screenshot.png: prumerge keeps ${counts[2]} of 576` })
          .waitFor({ timeout: 60_000 });
        assert.equal(await tabs.nth(1).getAttribute('aria-selected'), 'true');
        await shot('11c-heatmap-tabs');

        await chat.locator('button.remove[aria-label="Remove screenshot.png"]').click();
        await attached.nth(1).waitFor({ state: 'detached', timeout: 30_000 });
        assert.deepEqual(await attached.locator('.image-name').allInnerTexts(), ['diagram.png']);
        assert.equal(await chat.locator('.image-warning').filter({ hasText: 'trained on one image' }).count(), 0);
      },
    ),
  );
});
