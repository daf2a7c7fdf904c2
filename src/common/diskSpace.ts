/**
 * Free space checks before long writes (a 7B download or build writes gigabytes), and the one
 * message for a disk that fills up anyway.
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatBytes } from './formatBytes';

/** Bytes available to this user on the file system that holds `path` (or its nearest existing parent). */
export async function freeBytes(path: string): Promise<number> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(p) === p) throw e;
    }
  }
}

/** A message saying how much `what` needs in `where` and how much is free, or undefined if it fits. */
export async function lackOfSpace(where: string, needed: number, what: string): Promise<string | undefined> {
  const free = await freeBytes(where).catch(() => Number.POSITIVE_INFINITY); // unknown: let the write tell
  if (needed <= free) return undefined;
  return `${what} needs ${formatBytes(needed)} in ${where} and only ${formatBytes(free)} is free: free some space, or choose another folder`;
}

export function isDiskFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
