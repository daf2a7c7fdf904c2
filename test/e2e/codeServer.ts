/**
 * A real VS Code for the end-to-end tests: code-server with the packaged .vsix installed (and
 * any other extension a test needs beside it), a workspace, and Debian's chromium driving it
 * through playwright-core (docs/vscode-e2e.md). Needs `bash scripts/e2e/setup.sh` once.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { chromium, type BrowserContext, type Frame, type FrameLocator, type Page } from 'playwright-core';
import sharp from 'sharp';
import { isAlive } from '../helpers/processes';

export const ROOT = join(__dirname, '..', '..');
const CODE_SERVER = join(ROOT, '.e2e', 'code-server', 'node_modules', '.bin', 'code-server');
/** The Node code-server runs on (24; scripts/e2e/setup.sh puts it there). */
const CODE_SERVER_NODE = join(ROOT, '.e2e', 'node', 'bin');
const CHROMIUM = '/usr/bin/chromium';
export const SHOTS = join(ROOT, 'test-results', 'e2e');
export const EXTENSION_ID = 'prumerge.prumerge-vision';
const ready = existsSync(CODE_SERVER) && existsSync(join(CODE_SERVER_NODE, 'node')) && existsSync(CHROMIUM);
export const skip = !ready && process.env['E2E_REQUIRED'] !== '1' ? 'e2e tools missing: run `bash scripts/e2e/setup.sh` once' : false;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function waitFor(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

export interface VSCode {
  readonly page: Page;
  readonly workspace: string;
  /** code-server's user data folder (the extension's workspace storage is under User/workspaceStorage). */
  readonly userData: string;
  shot(name: string): Promise<void>;
  close(): Promise<void>;
}

let vsixPath: string | undefined;

/**
 * A code-server with the packaged extension installed, a workspace holding diagram.png (and
 * `workspaceSettings` as its .vscode/settings.json), and chromium showing it. With `trust`
 * false, workspace trust is on and the folder is opened untrusted (Restricted Mode).
 */
export async function launch(options: {
  trust: boolean;
  workspaceSettings?: Record<string, unknown>;
  userSettings?: Record<string, unknown>;
  /** Other extensions to install beside ours, as .vsix files. */
  extensions?: readonly string[];
  /** Runs before code-server starts, with its user data folder (to seed the extension's storage). */
  prepare?: (userData: string) => Promise<void>;
}): Promise<VSCode> {
  const scratch = mkdtempSync(join(tmpdir(), 'prumerge-e2e-'));
  const workspace = join(scratch, 'workspace');
  // the .vsix, as users get it (packaged once per run)
  if (!vsixPath) {
    const out = join(mkdtempSync(join(tmpdir(), 'prumerge-vsix-')), 'prumerge-vision.vsix');
    const pack = spawnSync(process.execPath, [join(ROOT, 'scripts', 'package.mjs'), '-o', out], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(pack.status, 0, `packaging failed: ${pack.stderr}`);
    vsixPath = out;
  }
  const vsix = vsixPath;

  // a workspace with a screenshot-like PNG, square so that no patch falls in padding
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  const diagram = join(ROOT, 'media', 'samples', 'pipeline-diagram.svg');
  await sharp(diagram, { density: 150 }).resize(672, 672, { fit: 'cover' }).png().toFile(join(workspace, 'diagram.png'));
  copyFileSync(join(ROOT, 'media', 'samples', 'editor-screenshot.png'), join(workspace, 'screenshot.png'));
  if (options.workspaceSettings) writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify(options.workspaceSettings));

  const home = join(scratch, 'home');
  const ext = join(scratch, 'extensions');
  const userData = join(scratch, 'user-data');
  mkdirSync(join(userData, 'User'), { recursive: true });
  const userSettingsFile = join(userData, 'User', 'settings.json');
  const userSettings: Record<string, unknown> = {
    'workbench.startupEditor': 'none',
    'chat.disableAIFeatures': true,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'prumergeVision.executionProvider': 'cpu',
    // sampled, long answers: slow enough to press Stop while one streams
    'prumergeVision.temperature': 1,
    'prumergeVision.maxNewTokens': 3000,
    ...options.userSettings,
  };
  writeFileSync(userSettingsFile, JSON.stringify(userSettings));
  const env = {
    ...process.env,
    PATH: `${CODE_SERVER_NODE}${delimiter}${process.env['PATH'] ?? ''}`,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    TMPDIR: scratch,
  };
  for (const extension of [vsix, ...(options.extensions ?? [])]) {
    const install = spawnSync(
      CODE_SERVER,
      ['--extensions-dir', ext, '--user-data-dir', userData, '--install-extension', extension, '--force'],
      {
        env,
        encoding: 'utf8',
      },
    );
    assert.equal(install.status, 0, `install failed: ${install.stderr}`);
  }
  await options.prepare?.(userData);

  const port = await freePort();
  const server: ChildProcess = spawn(
    CODE_SERVER,
    [
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-getting-started-override',
      ...(options.trust ? ['--disable-workspace-trust'] : []),
      '--extensions-dir',
      ext,
      '--user-data-dir',
      userData,
      workspace,
    ],
    // a process group of its own: closing ends its extension host and what that started (tsserver writes into the folder)
    { env, stdio: 'ignore', detached: true },
  );
  await waitFor(`http://127.0.0.1:${port}/healthz`, 30_000);

  const browser: BrowserContext = await chromium.launchPersistentContext(join(scratch, 'chromium'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  return {
    page,
    workspace,
    userData,
    shot: async (name) => {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, `${name}.png`) });
    },
    close: async () => {
      await browser.close();
      // code-server, its extension host and their children write into the folder until they have all exited
      await endProcessGroup(server.pid!);
      // the window's shared worker outlives it by design (detached): end it before its folder goes
      const workers = sharedWorkersUnder(scratch);
      for (const pid of workers) process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 50 && workers.some(isAlive); i++) await new Promise((r) => setTimeout(r, 100));
      if (!process.env['E2E_KEEP']) rmSync(scratch, { recursive: true, force: true, maxRetries: 10, retryDelay: 500 });
      else console.log(`kept ${scratch}`);
    },
  };
}

/** Ends process group `pgid` (TERM, then KILL what is left after 10 s) and waits until none of it is left. */
async function endProcessGroup(pgid: number): Promise<void> {
  const signal = (sig: NodeJS.Signals | 0): boolean => {
    try {
      process.kill(-pgid, sig);
      return true;
    } catch {
      return false; // ESRCH: no process of the group is left
    }
  };
  signal('SIGTERM');
  for (let i = 0; i < 100 && signal(0); i++) await new Promise((r) => setTimeout(r, 100));
  signal('SIGKILL');
  for (let i = 0; i < 50 && signal(0); i++) await new Promise((r) => setTimeout(r, 100));
}

/** Pids of shared workers whose socket lies under `dir` (from the process table). */
function sharedWorkersUnder(dir: string): number[] {
  const table = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout ?? '';
  return table
    .split('\n')
    .filter((l) => l.includes('--listen') && l.includes(dir))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((pid) => Number.isInteger(pid) && pid !== process.pid);
}

/**
 * The webview frame that holds `selector`: found by content, since a view shown again gets a
 * new iframe whose address no longer says purpose=webviewView.
 */
export async function findFrame(page: Page, selector: string): Promise<FrameLocator> {
  const frames = page.locator(`iframe.webview.ready[src*="extensionId=${EXTENSION_ID}"]`);
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    for (let i = 0; i < (await frames.count()); i++) {
      const candidate = frames.nth(i).contentFrame().frameLocator('#active-frame');
      if ((await candidate.locator(selector).count()) > 0) return candidate;
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`no webview shows ${selector}`);
}

/** The document of the webview that shows `selector` (inside VS Code's two frames), to run scripts in. */
export async function webviewFrame(page: Page, selector: string): Promise<Frame> {
  await findFrame(page, selector);
  for (const frame of page.frames()) {
    if (await frame.$(selector).catch(() => null)) return frame;
  }
  throw new Error(`no webview document holds ${selector}`);
}

/** Picks a colour theme by its label in Preferences: Color Theme, as a user does. */
export async function setColorTheme(page: Page, label: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ timeout: 30_000 });
  await input.fill('>Preferences: Color Theme');
  // by its own row: the first one may be "Browse Color Themes in Marketplace", which needs the network
  await page.locator('.quick-input-widget .monaco-list-row[aria-label^="Preferences: Color Theme"]').first().click();
  await page.locator('.quick-input-widget input[placeholder*="Color Theme"]').waitFor({ timeout: 30_000 });
  await input.fill(label);
  await page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: label }).first().waitFor({ timeout: 30_000 });
  await input.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 30_000 });
}

/** A test step that leaves a screenshot, and the chat's DOM, behind when it fails. */
export function step(vs: () => VSCode, name: string, fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (e) {
      const { page } = vs();
      await vs()
        .shot(`failed-${name}`)
        .catch(() => undefined);
      const html = await findFrame(page, 'section.conversation')
        .then((chat) => chat.locator('#app').evaluate((el) => el.outerHTML, undefined, { timeout: 5_000 }))
        .catch((err: Error) => `(no chat DOM: ${err.message})`);
      const frames = await page
        .locator('iframe.webview')
        .evaluateAll((els) => els.map((el) => `${el.className} ${el.getAttribute('src')}`))
        .catch(() => []);
      writeFileSync(join(SHOTS, `failed-${name}.html`), `<!-- webview frames:\n${frames.join('\n')}\n-->\n${html}`);
      throw e;
    }
  };
}

/** The chats the extension saved for the window's workspace (chats.json), or undefined before the first save. */
export function savedChats(vs: VSCode): { chats: { answers: { question: string; text: string }[] }[] } | undefined {
  const root = join(vs.userData, 'User', 'workspaceStorage');
  for (const hash of existsSync(root) ? readdirSync(root) : []) {
    const file = join(root, hash, EXTENSION_ID, 'chats.json');
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof savedChats>;
      } catch {
        return undefined; // never half-written (renamed into place), but read defensively
      }
    }
  }
  return undefined;
}

/** Runs a command by its title from the command palette (F1), as a keyboard user would. */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ timeout: 30_000 });
  await input.fill(`>${title}`);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 30_000 });
  await input.press('Enter');
}
