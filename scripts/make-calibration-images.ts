/**
 * Renders the int8 vision tower's calibration images (media/calibration/*.png): a document page,
 * code in a dark editor, a settings form and a bar chart, the kinds of picture the extension is
 * asked about. The PNGs are committed, so every build checks against the same pixels; this
 * script says how they were made (fonts: DejaVu and Liberation, Debian's).
 * Run: node --import tsx scripts/make-calibration-images.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const OUT = join(__dirname, '..', 'media', 'calibration');
const W = 768;
const H = 576;

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const lines = (texts: string[], x: number, y: number, step: number, attrs: string): string =>
  texts.map((t, i) => `<text x="${x}" y="${y + i * step}" ${attrs}>${escape(t)}</text>`).join('');

const DOCUMENT = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">
<rect width="100%" height="100%" fill="#fdfdfb"/>
<text x="60" y="70" font-family="DejaVu Serif" font-size="24" font-weight="bold" fill="#111">3. Token reduction before the language model</text>
${lines(
  [
    'A vision encoder turns each image crop into a grid of patch features.',
    'Most of these patches repeat what their neighbours already say: sky,',
    'margins, the empty half of a dialog. The reduction keeps the patches',
    'the encoder attends to most and merges the rest into them, so that the',
    'language model reads a few dozen rows instead of several hundred.',
    '',
    'Table 2 lists the accuracy on six benchmarks at each budget. Scores',
    'fall by less than one point down to 64 tokens per image, and by three',
    'points at 32, while the time to the first word falls fivefold.',
  ],
  60,
  130,
  34,
  'font-family="DejaVu Serif" font-size="19" fill="#222"',
)}
<rect x="60" y="450" width="648" height="70" fill="none" stroke="#888"/>
<text x="80" y="492" font-family="Liberation Sans" font-size="18" fill="#333">Figure 4: kept patches (outlined) on a screenshot of a code editor.</text>
</svg>`;

const CODE = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">
<rect width="100%" height="100%" fill="#1e1e1e"/>
<rect width="52" height="100%" fill="#252526"/>
${Array.from({ length: 16 }, (_, i) => `<text x="40" y="${50 + i * 30}" text-anchor="end" font-family="DejaVu Sans Mono" font-size="16" fill="#6e7681">${i + 1}</text>`).join('')}
${lines(
  [
    "import { readFile } from 'node:fs/promises';",
    '',
    'export async function loadConfig(path: string) {',
    "  const text = await readFile(path, 'utf8');",
    '  const config = JSON.parse(text) as Config;',
    '  if (config.threads < 1) {',
    "    throw new Error('threads must be at least 1');",
    '  }',
    '  return { ...DEFAULTS, ...config };',
    '}',
    '',
    'const DEFAULTS: Config = {',
    '  threads: 2,',
    "  model: 'llava-onevision-0.5b',",
    '};',
  ],
  68,
  50,
  30,
  'xml:space="preserve" font-family="DejaVu Sans Mono" font-size="17" fill="#d4d4d4"',
)}
</svg>`;

const FORM = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">
<rect width="100%" height="100%" fill="#f3f3f3"/>
<rect width="100%" height="48" fill="#007acc"/>
<text x="24" y="31" font-family="Liberation Sans" font-size="20" fill="#fff">Settings - Inference</text>
${['Model folder', 'Execution provider', 'Threads', 'Default reduction']
  .map(
    (label, i) => `<text x="40" y="${110 + i * 80}" font-family="Liberation Sans" font-size="17" fill="#333">${label}</text>
<rect x="40" y="${122 + i * 80}" width="420" height="32" fill="#fff" stroke="#bbb" rx="3"/>
<text x="52" y="${144 + i * 80}" font-family="Liberation Sans" font-size="15" fill="#555">${['~/models/onevision', 'auto', '0 (one per core)', 'PruMerge'][i]}</text>`,
  )
  .join('')}
<rect x="520" y="122" width="200" height="120" fill="#fff" stroke="#bbb"/>
<text x="536" y="150" font-family="Liberation Sans" font-size="15" fill="#333">[x] Keep chats</text>
<text x="536" y="185" font-family="Liberation Sans" font-size="15" fill="#333">[ ] Low detail</text>
<text x="536" y="220" font-family="Liberation Sans" font-size="15" fill="#333">[x] Use the GPU</text>
<rect x="40" y="460" width="120" height="36" fill="#0e639c" rx="3"/>
<text x="100" y="484" text-anchor="middle" font-family="Liberation Sans" font-size="16" fill="#fff">Save</text>
<rect x="176" y="460" width="120" height="36" fill="#ddd" rx="3"/>
<text x="236" y="484" text-anchor="middle" font-family="Liberation Sans" font-size="16" fill="#333">Cancel</text>
</svg>`;

const BARS = [62, 58, 71, 44, 80, 67];
const CHART = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${W / 2}" y="44" text-anchor="middle" font-family="Liberation Sans" font-size="22" fill="#222">Time to the first word by reduction (s)</text>
<line x1="90" y1="480" x2="720" y2="480" stroke="#333"/><line x1="90" y1="80" x2="90" y2="480" stroke="#333"/>
${BARS.map(
  (
    v,
    i,
  ) => `<rect x="${120 + i * 100}" y="${480 - v * 5}" width="60" height="${v * 5}" fill="${['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948'][i]}"/>
<text x="${150 + i * 100}" y="${470 - v * 5}" text-anchor="middle" font-family="Liberation Sans" font-size="15" fill="#222">${v}</text>
<text x="${150 + i * 100}" y="505" text-anchor="middle" font-family="Liberation Sans" font-size="14" fill="#444">${['none', 'prumerge', 'prumerge+', 'topk:32', 'topk:64', 'low'][i]}</text>`,
).join('')}
${[0, 20, 40, 60, 80].map((v) => `<text x="80" y="${485 - v * 5}" text-anchor="end" font-family="Liberation Sans" font-size="13" fill="#444">${v}</text>`).join('')}
</svg>`;

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  for (const [name, svg] of Object.entries({ document: DOCUMENT, code: CODE, form: FORM, chart: CHART })) {
    const png = await sharp(Buffer.from(svg)).png({ palette: true, colours: 64 }).toBuffer();
    writeFileSync(join(OUT, `${name}.png`), png);
    console.log(`${name}.png: ${png.length} bytes`);
  }
}

void main();
