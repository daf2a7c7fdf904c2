/**
 * Files shipped with the package (the demo model, the sample image), found from wherever the
 * code runs: dist/*.js in the bundle and the .vsix, src/<stage>/*.ts under tsx.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function packagePath(...parts: string[]): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, ...parts);
    dir = dirname(dir);
  }
  return join(__dirname, '..', ...parts);
}
