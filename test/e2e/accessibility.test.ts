/**
 * Accessibility in a real VS Code (code-server + chromium, docs/vscode-e2e.md): axe-core run inside
 * both webviews, the chat and the heatmap, in a dark, a light and both high-contrast themes finds
 * no serious or critical violation of WCAG 2.1 A and AA; the heatmap's merged patches are told
 * apart by a pattern, not by colour alone. Screenshots of the high-contrast themes go to
 * test-results/e2e/.
 *
 * Needs `bash scripts/e2e/setup.sh` once (CI runs it); skipped otherwise, unless E2E_REQUIRED=1.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Frame } from 'playwright-core';
import { askAboutDiagram, askAndStop } from './chatActions';
import { launch, setColorTheme, skip, step, VSCode, webviewFrame } from './codeServer';

/** VS Code's own themes of each kind, by their labels in the theme picker, with the class each gives a webview's body. */
const THEMES = [
  ['Dark 2026', 'vscode-dark'],
  ['Light 2026', 'vscode-light'],
  ['Dark High Contrast', 'vscode-high-contrast'],
  ['Light High Contrast', 'vscode-high-contrast-light'],
] as const;

const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** What the tests read of a webview's page (their tsconfig has no DOM types). */
interface Styles {
  getComputedStyle(e: unknown): { fill: string };
}
interface Themed {
  document: { body: { classList: { contains(c: string): boolean } } };
}

interface Violation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly nodes: string[];
}

/** axe-core's WCAG 2.1 A / AA violations in `frame`'s document. */
async function violations(frame: Frame): Promise<Violation[]> {
  if (!(await frame.evaluate(() => 'axe' in globalThis))) await frame.evaluate(AXE);
  return frame.evaluate(async () => {
    // in the webview's page (the test's tsconfig has no DOM types)
    const page = globalThis as unknown as {
      document: unknown;
      axe: { run: (ctx: unknown, o: object) => Promise<{ violations: AxeResult[] }> };
    };
    interface AxeResult {
      id: string;
      impact: string | null;
      help: string;
      nodes: { target: string[]; failureSummary?: string }[];
    }
    const r = await page.axe.run(page.document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary ?? ''}`),
    }));
  });
}

describe('accessibility of the webviews in dark, light and high-contrast themes', { skip, timeout: 300_000 }, () => {
  let vs: VSCode;
  before(async () => {
    vs = await launch({ trust: true });
  });
  after(() => vs?.close());

  it(
    'axe finds no serious or critical violation in the chat or the heatmap, in any of the four kinds of theme',
    step(
      () => vs,
      'axe',
      async () => {
        const chat = await askAboutDiagram(vs);
        const answer = await askAndStop(chat, 'What does this diagram show?');
        await answer.locator('.stats vscode-button', { hasText: 'Heatmap' }).click();
        const heatmap = await webviewFrame(vs.page, 'svg.overlay');
        await heatmap
          .locator('.summary')
          .filter({ hasText: /keeps \d+ of 576/ })
          .waitFor({ timeout: 60_000 });
        // a kept patch's merged ones pinned by keyboard: hatched, whatever the colours
        const kept = Number(await heatmap.locator('rect.cell.kept').first().getAttribute('data-patch'));
        await heatmap.locator('svg.overlay').first().focus();
        for (let i = 0; i < Math.floor(kept / 24); i++) await vs.page.keyboard.press('ArrowDown');
        for (let i = 0; i < kept % 24; i++) await vs.page.keyboard.press('ArrowRight');
        await vs.page.keyboard.press('Enter');
        await heatmap
          .locator('.detail')
          .filter({ hasText: /Pinned/ })
          .waitFor({ timeout: 10_000 });
        const merged = heatmap.locator('rect.cell.merged');
        if ((await merged.count()) > 0) {
          const fill = await merged.first().evaluate((r) => (globalThis as unknown as Styles).getComputedStyle(r).fill);
          assert.match(fill, /url\(.*merged-hatch/);
        }
        const chatFrame = await webviewFrame(vs.page, 'section.conversation');

        const serious: string[] = [];
        for (const [theme, bodyClass] of THEMES) {
          await setColorTheme(vs.page, theme);
          for (const frame of [chatFrame, heatmap])
            await frame.waitForFunction((c) => (globalThis as unknown as Themed).document.body.classList.contains(c), bodyClass, {
              timeout: 60_000,
            });
          await vs.page.waitForTimeout(500); // the theme's colours reach the toolkit's components a frame later
          for (const [name, frame] of [
            ['chat', chatFrame],
            ['heatmap', heatmap],
          ] as const) {
            for (const v of await violations(frame)) {
              const line = `${theme}, ${name}: ${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.join('\n    ')}`;
              if (v.impact === 'serious' || v.impact === 'critical') serious.push(line);
              else console.log(`# axe, not serious: ${line}`);
            }
          }
          if (bodyClass.includes('high-contrast')) await vs.shot(`a11y-${bodyClass}`);
        }
        assert.deepEqual(serious, []);
      },
    ),
  );
});
