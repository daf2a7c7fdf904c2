/** End to end: Compare, all tokens against the reduction, in a real VS Code. Needs scripts/e2e/setup.sh, as chat.test.ts. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { askAboutDiagram } from './chatActions';
import { launch, skip, step, VSCode } from './codeServer';

describe('Compare in a real VS Code', { skip, timeout: 180_000 }, () => {
  let vs: VSCode;
  before(async () => {
    vs = await launch({ trust: true, userSettings: { 'prumergeVision.maxNewTokens': 24, 'prumergeVision.defaultReduction': 'topk:32' } });
  });
  after(() => vs?.close());

  it(
    'compares all 576 tokens with the chosen reduction, side by side with both timings; then any reading with it',
    step(
      () => vs,
      'compare',
      async () => {
        const chat = await askAboutDiagram(vs);
        await chat.locator('vscode-text-area textarea').fill('What is in the green box?');
        await chat.locator('vscode-button', { hasText: 'Compare' }).click();
        const pair = chat.locator('.exchange.compare').last();
        await pair.locator('.stats').nth(1).waitFor({ timeout: 60_000 });
        const [all, reduced] = [await pair.locator('.stats').nth(0).innerText(), await pair.locator('.stats').nth(1).innerText()];
        // the image may or may not have been read ahead by the time the question came
        assert.match(all, /all 576 visual tokens( · image read from memory)? · first token \d+ ms/);
        // the second answer of a comparison never runs the tower again: the first one read the image
        assert.match(reduced, /33 of 576 visual tokens, \d+(\.\d)?x fewer · image read from memory · first token \d+ ms/);
        await pair.locator('.stats').nth(1).scrollIntoViewIfNeeded();
        await vs.shot('6-compare');
        // in the side bar at its default width both answers are whole: stacked rather than cut off at its edge
        const view = (await chat.locator('section.conversation').boundingBox())!;
        for (const answer of await pair.locator('article.answer').all()) {
          const box = (await answer.boundingBox())!;
          assert.ok(
            box.x >= view.x - 1 && box.x + box.width <= view.x + view.width + 1,
            `an answer spans ${box.x}..${box.x + box.width}, the view ${view.x}..${view.x + view.width}`,
          );
        }
        // the random-weights notice sits above the transcript, never over an answer's buttons
        const notice = (await chat.locator('p.notice').boundingBox())!;
        assert.ok(
          notice.y + notice.height <= view.y + 1,
          `the notice ends at ${notice.y + notice.height}, the transcript starts at ${view.y}`,
        );
        // any two readings: PruMerge beside the chosen topk:32; the same reading on both sides cannot be compared
        const against = chat.locator('vscode-dropdown[aria-label="Compare with"]');
        await against.click();
        await against.locator('vscode-option[value="topk:32"]').click();
        await chat.locator('vscode-button[disabled]', { hasText: 'Compare' }).waitFor();
        assert.equal(
          await chat.locator('vscode-button', { hasText: 'Compare' }).getAttribute('title'),
          'Pick a different reading to compare with',
        );
        await against.click();
        await against.locator('vscode-option[value="prumerge"]').click();
        await chat.locator('vscode-text-area textarea').fill('And the arrows?');
        await chat.locator('vscode-button:not([disabled])', { hasText: 'Compare' }).click();
        await chat.locator('.exchange.compare').nth(1).locator('.stats').nth(1).waitFor({ timeout: 60_000 });
        const second = chat.locator('.exchange.compare').nth(1);
        assert.deepEqual(await second.locator('.mode').allInnerTexts(), ['PruMerge (adaptive)', 'Fixed budget: 32 patches']);
        assert.match(await second.locator('.stats').nth(0).innerText(), /^\d+ of 576 visual tokens, \d+(\.\d)?x fewer/);
        assert.match(await second.locator('.stats').nth(1).innerText(), /^33 of 576 visual tokens/);
        await second.scrollIntoViewIfNeeded();
        await vs.shot('6b-compare-readings');
      },
    ),
  );
});

// a LLaVA-NeXT model of the demo's sizes (336 px tiles, so a 1024 x 768 screenshot is read as
// LLaVA-1.6 reads it: an overview and 2 x 2 tiles, 2340 visual tokens), short answers
