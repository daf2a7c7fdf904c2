/**
 * The model folders the extension has built (in its global storage), as the Installed Models pick
 * shows them: name, size on disk, weight format, and the downloaded checkpoint they were built
 * from while it is still in the hub cache. No vscode import.
 */
import { visionPrecisionText } from '../../shared/visionPrecision';
import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { ModelManifest, readManifest } from '../../format/modelManifest';

export interface InstalledModel {
  readonly dir: string;
  readonly name: string;
  readonly dtype: string;
  /** How its vision tower computes, and what the build's int8 check measured. */
  readonly vision: string;
  /** Bytes of its files, as its model.json lists them. */
  readonly bytes: number;
  /** The hub cache's folder for the repository it was downloaded from, while it exists. */
  readonly download?: { readonly dir: string; readonly repo: string };
}

/** Every complete model folder under `modelsDir`, by name; unfinished or foreign folders are left out. */
export async function listInstalledModels(modelsDir: string): Promise<InstalledModel[]> {
  const entries = await readdir(modelsDir, { withFileTypes: true }).catch(() => []);
  const models: InstalledModel[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || e.name.endsWith('.partial')) continue;
    const dir = join(modelsDir, e.name);
    const m = await manifestIn(dir);
    if (!m) continue;
    const bytes = Object.values(m.files).reduce((n, f) => n + f.bytes, 0);
    const download = m.checkpoint ? hubRepoOf(m.checkpoint) : undefined;
    models.push({ dir, name: m.name, dtype: m.dtype, vision: visionPrecisionText(m.vision), bytes, ...(download && existsSync(download.dir) ? { download } : {}) });
  }
  return models.sort((a, b) => a.name.localeCompare(b.name));
}

/** A folder's model.json when it reads as one (format's reader); undefined otherwise. */
export async function manifestIn(dir: string): Promise<ModelManifest | undefined> {
  return readManifest(dir).catch(() => undefined);
}

/**
 * A hub cache snapshot (`.../models--org--name/snapshots/<commit>`) -> its repository folder and
 * name; undefined for a checkpoint folder of the user's own.
 */
export function hubRepoOf(checkpoint: string): { dir: string; repo: string } | undefined {
  const snapshots = dirname(resolve(checkpoint));
  const repoDir = dirname(snapshots);
  const m = /^models--(.+?)--(.+)$/.exec(basename(repoDir));
  if (basename(snapshots) !== 'snapshots' || !m) return undefined;
  return { dir: repoDir, repo: `${m[1]}/${m[2]}` };
}

/** Bytes under `dir` (files only; links not followed). */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await folderBytes(path);
    else if (e.isFile()) total += (await stat(path)).size;
  }
  return total;
}

/** Deletes a folder the extension made or downloaded; refuses anything outside `root`. */
export async function deleteInside(root: string, dir: string): Promise<void> {
  const r = resolve(root);
  const d = resolve(dir);
  if (!d.startsWith(r + sep)) throw new Error(`${dir} is not inside ${root}: not deleted`);
  await rm(d, { recursive: true, force: true });
}
