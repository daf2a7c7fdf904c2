/**
 * The token heatmap as a PNG: the image as the user sees it, the patch grid mapped back onto it
 * (padding and crop undone), CLS attention as colour, the kept patches outlined (solid for
 * attention outliers, dashed for PruMerge+'s spatial supplement), and a legend.
 */
import sharp from 'sharp';
import { ATTENTION_STOPS, attentionColour } from './attentionColour';
import { HeatmapInput, heatmapLayout } from './heatmapLayout';
import { decodeForDisplay } from './preprocess';

export async function renderHeatmap(image: string | Uint8Array, inspection: HeatmapInput, maxSide = 1024): Promise<Buffer> {
  const layout = heatmapLayout(inspection);
  const display = await decodeForDisplay(image, maxSide);
  const scale = display.width / layout.width;
  const legend = 44;
  const cells: string[] = [];
  const outlines: string[] = [];
  for (const { box, colour, role } of layout.cells) {
    const x = (box.left * scale).toFixed(1);
    const y = (box.top * scale).toFixed(1);
    const w = ((box.right - box.left) * scale).toFixed(1);
    const h = ((box.bottom - box.top) * scale).toFixed(1);
    cells.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="${colour}"/>`);
    if (role !== 'other') {
      const stroke = role === 'spatial' ? ' stroke-dasharray="4 3" stroke="#00e5ff"' : ' stroke="#ff3b30"';
      outlines.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke-width="2"${stroke}/>`);
    }
  }
  const W = display.width;
  const H = display.height;
  const stops = ATTENTION_STOPS.map(
    (_, i) => `<stop offset="${i / (ATTENTION_STOPS.length - 1)}" stop-color="${attentionColour(i / (ATTENTION_STOPS.length - 1))}"/>`,
  ).join('');
  const title = `${layout.headline}.${layout.paddingNote ? ` ${layout.paddingNote}` : ''}`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + legend}">
  <defs><linearGradient id="g" x1="0" x2="1" y1="0" y2="0">${stops}</linearGradient></defs>
  <g opacity="0.55">${cells.join('')}</g>
  <g>${outlines.join('')}</g>
  <rect x="0" y="${H}" width="${W}" height="${legend}" fill="#1e1e1e"/>
  <text x="8" y="${H + 17}" font-family="sans-serif" font-size="13" fill="#ffffff">${escapeXml(title)}</text>
  <text x="8" y="${H + 36}" font-family="sans-serif" font-size="11" fill="#cccccc">CLS attention: low</text>
  <rect x="112" y="${H + 27}" width="${Math.max(W - 260, 40)}" height="10" fill="url(#g)"/>
  <text x="${Math.max(W - 140, 160)}" y="${H + 36}" font-family="sans-serif" font-size="11" fill="#cccccc">high   <tspan fill="#ff3b30">kept</tspan>  <tspan fill="#00e5ff">spatial</tspan></text>
</svg>`;
  return sharp(display.png)
    .extend({ bottom: legend, background: '#1e1e1e' })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
