/**
 * The token heatmap as a PNG: the image as the user sees it, the patch grid mapped back onto it
 * (padding and crop undone), each patch's score as colour (CLS attention, or attention received), the kept patches outlined (solid for
 * attention outliers, dashed for PruMerge+'s spatial supplement), and a legend. LLaVA-NeXT's
 * overview and tiles are two pictures, one above the other.
 */
import sharp, { type OverlayOptions } from 'sharp';
import { ATTENTION_STOPS, attentionColour, scoreName } from '../../shared/attentionColour';
import type { Inspection } from '../../shared/results';
import { heatmapFigures, HeatmapLayout } from '../../shared/heatmapLayout';
import { decodeForDisplay } from './preprocess';

export async function renderHeatmap(image: string | Uint8Array, inspection: Inspection, maxSide = 1024): Promise<Buffer> {
  const { headline, figures } = heatmapFigures(inspection);
  const display = await decodeForDisplay(image, maxSide);
  const caption = figures.length > 1 ? 22 : 0;
  const W = display.width;
  const H = display.height;
  const block = caption + H;
  const legend = 44;
  const layers: OverlayOptions[] = [];
  const texts: string[] = [];
  figures.forEach(({ title, layout }, i) => {
    const top = i * block;
    layers.push({ input: display.png, top: top + caption, left: 0 });
    layers.push({ input: Buffer.from(cellsSvg(layout, W / layout.width, W, H)), top: top + caption, left: 0 });
    if (title) texts.push(`<text x="8" y="${top + 16}" font-family="sans-serif" font-size="13" fill="#ffffff">${escapeXml(title)}</text>`);
  });
  const total = figures.length * block;
  const stops = ATTENTION_STOPS.map(
    (_, i) => `<stop offset="${i / (ATTENTION_STOPS.length - 1)}" stop-color="${attentionColour(i / (ATTENTION_STOPS.length - 1))}"/>`,
  ).join('');
  const note = figures[0]!.layout.paddingNote;
  const title = `${headline}.${note ? ` ${note}` : ''}`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${total + legend}">
  <defs><linearGradient id="g" x1="0" x2="1" y1="0" y2="0">${stops}</linearGradient></defs>
  ${texts.join('')}
  <text x="8" y="${total + 17}" font-family="sans-serif" font-size="13" fill="#ffffff">${escapeXml(title)}</text>
  <text x="8" y="${total + 36}" font-family="sans-serif" font-size="11" fill="#cccccc">${escapeXml(scoreName(inspection.score, inspection.relevance !== undefined))}: low</text>
  <rect x="136" y="${total + 27}" width="${Math.max(W - 284, 40)}" height="10" fill="url(#g)"/>
  <text x="${Math.max(W - 140, 160)}" y="${total + 36}" font-family="sans-serif" font-size="11" fill="#cccccc">high   <tspan fill="#ff3b30">kept</tspan>  <tspan fill="#00e5ff">spatial</tspan></text>
</svg>`;
  layers.push({ input: Buffer.from(svg), top: 0, left: 0 });
  return sharp({ create: { width: W, height: total + legend, channels: 3, background: '#1e1e1e' } })
    .composite(layers)
    .png()
    .toBuffer();
}

/** One figure's cells and outlines over a W x H picture, `scale` display pixels per source pixel. */
function cellsSvg(layout: HeatmapLayout, scale: number, W: number, H: number): string {
  const cells: string[] = [];
  const outlines: string[] = [];
  for (const { box, colour, role } of layout.cells) {
    const x = (box.left * scale).toFixed(1);
    const y = (box.top * scale).toFixed(1);
    const w = ((box.right - box.left) * scale).toFixed(1);
    const h = ((box.bottom - box.top) * scale).toFixed(1);
    cells.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="${role === 'removed' ? '#000000' : colour}"/>`);
    if (role === 'kept' || role === 'spatial') {
      const stroke = role === 'spatial' ? ' stroke-dasharray="4 3" stroke="#00e5ff"' : ' stroke="#ff3b30"';
      outlines.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke-width="2"${stroke}/>`);
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><g opacity="0.55">${cells.join('')}</g><g>${outlines.join('')}</g></svg>`;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
