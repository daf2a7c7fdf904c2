/** End to end: the walkthrough a new user follows. Needs scripts/e2e/setup.sh, as chat.test.ts. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tinyCheckpoint } from '../helpers/checkpoints';
import { FakeHub, startFakeHub } from '../helpers/fakeHub';
import { findFrame, launch, skip, step, VSCode } from './codeServer';

describe('Getting started in a real VS Code', { skip, timeout: 240_000 }, () => {
  let vs: VSCode;
  let hub: FakeHub;
  before(async () => {
    const ckpt = await tinyCheckpoint({ seed: 61 });
    hub = await startFakeHub('bczhou/tiny-llava-v1-hf', ckpt.dir);
    vs = await launch({ trust: true, userSettings: { 'prumergeVision.hubEndpoint': hub.url } });
  });
  after(async () => {
    await vs?.close();
    await hub?.close();
  });

  it(
    'the welcome notification opens the walkthrough, and its download step downloads, builds and selects a model',
    step(
      () => vs,
      'walkthrough',
      async () => {
        const { page } = vs;
        // the extension activates when its views are shown
        await page.locator('.activitybar .action-label[aria-label^="PruMerge Vision"]').click({ timeout: 60_000 });
        const welcome = page.locator('.notifications-toasts .notification-list-item', { hasText: 'demo model' });
        await welcome.waitFor({ timeout: 60_000 });
        await welcome.getByRole('button', { name: 'Get Started' }).click();
        await page.getByText('Get Started with PruMerge Vision').first().waitFor({ timeout: 60_000 });
        // the chat view is open, but nothing was asked yet: the first step is not ticked
        const demoStep = page.locator('.getting-started-step[data-step-id$="#demo"]');
        await demoStep.waitFor({ timeout: 30_000 });
        assert.equal(await demoStep.getAttribute('aria-checked'), 'false', 'the first step waits for an answer');
        await page
          .getByRole('button', { name: /Get a real model/ })
          .first()
          .click();
        await page.getByRole('button', { name: 'Download a Model...' }).waitFor({ timeout: 30_000 });
        await vs.shot('11-walkthrough');
        const input = page.locator('.quick-input-widget');
        // the step just selected loads its media beside it, which can take the focus and so close a
        // picker opened meanwhile: opened again until the pick lands, as a person would
        for (let attempt = 1; ; attempt++) {
          await page.getByRole('button', { name: 'Download a Model...' }).click();
          await input.locator('.quick-input-title', { hasText: /free on this disk/ }).waitFor({ timeout: 30_000 });
          const picked = await input
            .getByRole('option', { name: /^TinyLLaVA 1\.4B,/ })
            .click({ timeout: 10_000 })
            .then(
              () => true,
              () => false,
            );
          if (picked) break;
          assert.ok(attempt < 3, 'the model picker closed before a model could be picked, three times');
          await input.waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => page.keyboard.press('Escape'));
        }
        await input.getByRole('option', { name: /^fp32,/ }).click();
        await page
          .locator('.notifications-toasts .notification-list-item', {
            hasText: /Built tiny-llava-v1-hf \(.* GiB\); PruMerge Vision now uses it/,
          })
          .waitFor({ timeout: 120_000 });
        // the chat no longer warns of random weights
        const chat = await findFrame(page, 'section.conversation');
        await chat.locator('.notice').waitFor({ state: 'hidden', timeout: 30_000 });
        assert.ok(
          hub.log.some((r) => r.path.includes('bczhou/tiny-llava-v1-hf')),
          'downloaded from the stand-in hub',
        );
        await vs.shot('12-model-built');
      },
    ),
  );
});
