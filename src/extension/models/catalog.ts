/** The models "Download Model..." offers: models/catalog.json. */
import { readFile } from 'node:fs/promises';

export interface CatalogEntry {
  /** "org/name" on the hub. */
  readonly repo: string;
  readonly name: string;
  readonly description: string;
  /** Download size (the checkpoint's safetensors). */
  readonly approxGiB: number;
  /** The model folder `prumerge build` makes of it (int4 language model). */
  readonly approxBuiltGiB?: number;
  /** The model card's licence, shown before the download. */
  readonly licence?: string;
  /** The machine it is the suggestion for (the walkthrough's table and the README say the same: test/extension/package.test.ts). */
  readonly suggestedFor?: string;
}

export async function readCatalog(path: string): Promise<CatalogEntry[]> {
  const entries: unknown = JSON.parse(await readFile(path, 'utf8'));
  if (!Array.isArray(entries)) throw new Error(`${path} must hold a list of models`);
  return entries.filter((e): e is CatalogEntry => typeof e?.repo === 'string' && typeof e?.name === 'string');
}
