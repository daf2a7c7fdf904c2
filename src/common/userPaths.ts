/**
 * Messages in the user's terms: a file named as the user knows it (relative to the workspace or the
 * current folder), not by the absolute path the worker was given. No vscode import, so the CLI and
 * the tests use it too.
 */

export interface UserPlaces {
  /** Folders whose files are named relative to them (the workspace folders, or the CLI's current folder). */
  readonly folders: readonly string[];
  /** With several folders, each file is prefixed by its folder's name, as VS Code's relative paths are. */
  readonly prefixFolderName?: boolean;
  /** Where pasted screenshots are kept: such a file is "the pasted image". */
  readonly pastedDir?: string;
}

/** `message` with every absolute path inside `places` replaced by the name the user knows. */
export function inUserTerms(message: string, places: UserPlaces): string {
  let out = message;
  if (places.pastedDir) {
    const dir = withSeparator(places.pastedDir);
    out = out.replace(new RegExp(`${escape(dir)}[^\\s:;,()"']+`, 'g'), 'the pasted image');
  }
  // the longest first: a folder inside another is named from the inner one
  const folders = [...places.folders].filter((f) => f.length > 1).sort((a, b) => b.length - a.length);
  for (const folder of folders) {
    const prefix = places.prefixFolderName && places.folders.length > 1 ? `${lastSegment(folder)}/` : '';
    out = out.replace(new RegExp(escape(withSeparator(folder)), 'g'), prefix);
  }
  return out;
}

function withSeparator(dir: string): string {
  return /[\\/]$/.test(dir) ? dir : `${dir}${dir.includes('\\') && !dir.includes('/') ? '\\' : '/'}`;
}

function lastSegment(dir: string): string {
  return (
    dir
      .replace(/[\\/]+$/, '')
      .split(/[\\/]/)
      .pop() ?? dir
  );
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
