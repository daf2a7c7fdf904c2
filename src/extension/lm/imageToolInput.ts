/**
 * The "ask about an image" language-model tool's input and what it may read, without vscode:
 * a workspace path (relative to the first folder, or absolute) of an image file and a question.
 * A file outside the workspace is read only after the user confirms it in VS Code's chat.
 */
import { isAbsolute, resolve } from 'node:path';
import { UserError } from '../../common/errors';
import { isImagePath, isInside } from '../imageFiles';

export interface ImageToolInput {
  readonly path: string;
  readonly question: string;
}

export class ImageToolError extends UserError {
  override readonly name = 'ImageToolError';
}

/** What package.json declares as the tool's inputSchema, checked here as well: a caller may send anything. */
export function checkToolInput(input: unknown): ImageToolInput {
  const o = input as Partial<Record<keyof ImageToolInput, unknown>> | null;
  if (typeof o !== 'object' || o === null) throw new ImageToolError('the tool takes { path, question }');
  if (typeof o.path !== 'string' || !o.path.trim()) throw new ImageToolError('path must name an image file in the workspace');
  if (typeof o.question !== 'string' || !o.question.trim()) throw new ImageToolError('question must say what to ask about the image');
  return { path: o.path.trim(), question: o.question.trim() };
}

/** The file the input names, and whether reading it needs the user's confirmation (outside every workspace folder). */
export function locateImage(input: ImageToolInput, folders: readonly string[]): { readonly file: string; readonly outside: boolean } {
  if (!isAbsolute(input.path) && folders.length === 0)
    throw new ImageToolError(`${input.path} is relative, and no folder is open: give an absolute path`);
  const file = isAbsolute(input.path) ? resolve(input.path) : resolve(folders[0]!, input.path);
  if (!isImagePath(file)) throw new ImageToolError(`${input.path} is not an image file (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF or SVG)`);
  return { file, outside: !isInside(file, folders) };
}
