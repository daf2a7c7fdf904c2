/** Which files the extension treats as images, and which paths a webview may name. No vscode import. */
import { extname, relative, resolve, isAbsolute } from 'node:path';

export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp', 'gif', 'bmp', 'tif', 'tiff', 'avif', 'svg'] as const;

export function isImagePath(path: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(path).slice(1).toLowerCase());
}

/** True when `path` lies inside one of `folders` (after resolving `..`). */
export function isInside(path: string, folders: readonly string[]): boolean {
  const target = resolve(path);
  return folders.some((folder) => {
    const rel = relative(resolve(folder), target);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  });
}

/** A pasted image's bytes from a data: URL, checked to be one of the formats the webview may send. */
export function decodeImageDataUrl(dataUrl: string): { bytes: Buffer; extension: string } {
  const m = /^data:image\/(png|jpeg|webp|gif);base64,([A-Za-z0-9+/=]+)$/.exec(dataUrl);
  if (!m) throw new Error('the pasted data is not a PNG, JPEG, WebP or GIF image');
  return { bytes: Buffer.from(m[2]!, 'base64'), extension: m[1] === 'jpeg' ? 'jpg' : m[1]! };
}

/** Only web links leave VS Code, and only when the user clicks them. */
export function isSafeExternalLink(href: string): boolean {
  try {
    const url = new URL(href);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
