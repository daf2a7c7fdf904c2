/**
 * Writes media/samples/editor-screenshot.png: a 1024 x 768 screenshot-like picture of a code
 * editor with small text, the shape LLaVA-NeXT reads as a 672 x 672 grid (2340 visual tokens).
 * Drawn from an SVG with sharp; run once, the PNG is committed.
 *
 *   node --import tsx scripts/make-screenshot-sample.ts
 */
import sharp from 'sharp';
import { packagePath } from '../src/common/packagePath';

const CODE = [
  "import { reduceVisualTokens } from './prumerge';",
  '',
  'export async function encode(image: string, mode: ReduceMode) {',
  '  const pre = await preprocessAnyres(image, pinpoints, 24);',
  '  for (const sub of pre.layout.subImages) {',
  '    const taps = await vision.run(sub.pixels);',
  '    rows.push(reduceVisualTokens(taps, mode, sub.valid));',
  '  }',
  '  // one row of features per kept patch',
  '  return project(rows);',
  '}',
];
const FILES = [
  'src',
  '  pipeline',
  '    anyres.ts',
  '    engine.ts',
  '    prumerge.ts',
  '  worker',
  '    main.ts',
  'README.md',
  'package.json',
];

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function svg(): string {
  const lines = CODE.map(
    (l, i) =>
      `<text x="262" y="${92 + i * 19}" fill="#6a737d">${i + 1}</text><text x="292" y="${92 + i * 19}" fill="#d4d4d4">${escape(l)}</text>`,
  );
  const tree = FILES.map((f, i) => `<text x="14" y="${92 + i * 19}" fill="#cccccc">${escape(f)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="1024" height="768" xml:space="preserve" font-family="DejaVu Sans Mono, monospace" font-size="12">
  <rect width="1024" height="768" fill="#1e1e1e"/>
  <rect width="1024" height="30" fill="#3c3c3c"/><text x="430" y="20" fill="#cccccc">engine.ts - prumerge-vision</text>
  <rect y="30" width="240" height="716" fill="#252526"/><text x="14" y="60" fill="#bbbbbb" font-weight="bold">EXPLORER</text>
  <rect x="240" y="30" width="160" height="30" fill="#1e1e1e"/><text x="256" y="50" fill="#ffffff">engine.ts</text>
  ${tree.join('\n  ')}
  ${lines.join('\n  ')}
  <rect x="240" y="520" width="784" height="226" fill="#181818"/><text x="256" y="545" fill="#cccccc">TERMINAL</text>
  <text x="256" y="570" fill="#89d185">$ prumerge ask editor-screenshot.png "What does encode return?" --reduce prumerge</text>
  <text x="256" y="590" fill="#d4d4d4">Reading the image as an overview and four tiles...</text>
  <rect y="746" width="1024" height="22" fill="#007acc"/><text x="10" y="761" fill="#ffffff">main  Ln 7, Col 42  UTF-8  TypeScript</text>
</svg>`;
}

async function main(): Promise<void> {
  const out = packagePath('media', 'samples', 'editor-screenshot.png');
  await sharp(Buffer.from(svg())).png({ compressionLevel: 9, palette: true }).toFile(out);
  console.log(`wrote ${out}`);
}

void main();
