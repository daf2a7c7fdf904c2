/** End to end: a tiled model (LLaVA-NeXT layout) in a real VS Code. Needs scripts/e2e/setup.sh, as chat.test.ts. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildSynthetic } from '../../src/builder/buildModel';
import { askAboutDiagram } from './chatActions';
import { findFrame, launch, skip, step, VSCode } from './codeServer';

describe('LLaVA-NeXT in a real VS Code', { skip, timeout: 180_000 }, () => {
  let vs: VSCode;
  before(async () => {
    const model = join(mkdtempSync(join(tmpdir(), 'prumerge-e2e-next-')), 'demo-next');
    await buildSynthetic('demo-next', 7, { out: model, dtype: 'fp32' });
    vs = await launch({
      trust: true,
      userSettings: {
        'prumergeVision.modelFolder': model,
        'prumergeVision.maxNewTokens': 8,
        'prumergeVision.defaultReduction': 'prumerge',
      },
    });
  });
  after(() => vs?.close());

  it(
    'answers about a 1024 x 768 screenshot and shows its overview and tiles in the heatmap',
    step(
      () => vs,
      'next',
      async () => {
        const chat = await askAboutDiagram(vs, 'screenshot.png');
        // the picker's counts are this model's and this image's, not LLaVA-1.5's 576
        const picker = chat.locator('vscode-dropdown[aria-label="Visual token reduction"]');
        await picker
          .locator('vscode-option[value="none"]')
          .filter({ hasText: 'All 2340 tokens' })
          .waitFor({ state: 'attached', timeout: 60_000 });
        assert.match(await picker.locator('vscode-option[value="topk:32"]').innerText(), /32 patches in each of 5 parts/);
        // Compare's picker, short: the same counts
        const against = chat.locator('vscode-dropdown[aria-label="Compare with"]');
        assert.equal(await against.locator('vscode-option[value="none"]').innerText(), 'All 2340 tokens');
        assert.equal(await against.locator('vscode-option[value="topk:32"]').innerText(), 'Fixed budget: 32 x 5');
        // medium detail: at most 4 tiles, which LLaVA-NeXT's 2 x 2 grid for this picture already is
        assert.match(
          await picker.locator('vscode-option[value="prumerge@medium"]').innerText(),
          /PruMerge \(adaptive\), medium detail · 5 crops/,
        );
        await chat.locator('vscode-text-area textarea').fill('What does the terminal say?');
        await chat.locator('vscode-text-area textarea').press('Enter');
        const stats = chat.locator('.stats').first();
        await stats.waitFor({ timeout: 60_000 });
        // as many of the 5 crops as were read ahead of the question come from memory
        assert.match(
          await stats.innerText(),
          /\d+ of 2340 visual tokens, \d+(\.\d)?x fewer( · (all 5|[1-4] of 5) crops read from memory)? · first token \d+ ms/,
        );
        await vs.shot('7-next-answer');
        await stats.locator('vscode-button', { hasText: 'Heatmap' }).click();
        const panel = await findFrame(vs.page, '.summary');
        await panel
          .locator('.summary')
          .filter({ hasText: /prumerge keeps \d+ of 2340 visual tokens, [\d.]+x fewer \(overview and 4 tiles/ })
          .waitFor({ timeout: 60_000 });
        assert.equal(await panel.locator('figcaption').count(), 2);
        await panel.locator('figcaption').filter({ hasText: 'Tiles: 2 x 2 of 336 x 336 at 672 x 672' }).waitFor();
        // the tiles' figure: every patch of the picture, from four tiles (rows of padding are not drawn)
        const tiles = panel.locator('figure').nth(1);
        assert.equal(await tiles.locator('rect.cell').count(), 4 * 18 * 24);
        await tiles.locator('rect.cell.kept').first().hover();
        await panel
          .locator('.detail')
          .filter({ hasText: /^Tile \d, \d, patch row \d+, column \d+: kept/ })
          .waitFor();
        await vs.shot('8-next-heatmap');
      },
    ),
  );
});

// a first start: the welcome notification leads to the walkthrough, whose download step fetches a
// checkpoint from the stand-in hub the download tests use, builds it and switches to it
