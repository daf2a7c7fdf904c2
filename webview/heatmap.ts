/**
 * The token heatmap panel: the image with the patch grid mapped back onto it (padding and crop
 * undone), CLS attention as colour, kept patches outlined (dashed: spatial supplement); hovering
 * a kept patch highlights the patches merged into it.
 */
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeDropdown, vsCodeOption, vsCodeProgressRing } from '@vscode/webview-ui-toolkit';
import { heatmapLayout } from '../src/pipeline/heatmapLayout';
import type { HeatmapEvent, HeatmapRequest, InspectResult } from '../src/protocol';
import { REDUCTION_CHOICES } from '../src/reductionChoices';
import { el, initialState, vscodeApi } from './vscodeApi';

provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeDropdown(), vsCodeOption(), vsCodeProgressRing());

const SVG = 'http://www.w3.org/2000/svg';
const vscode = vscodeApi<{ reduce: string }, HeatmapRequest>();
let reduce = vscode.getState()?.reduce ?? initialState<{ reduce?: string }>().reduce ?? 'prumerge';

const modeSelect = el('vscode-dropdown', { 'aria-label': 'Reduction mode' });
for (const { value, short } of REDUCTION_CHOICES) modeSelect.append(el('vscode-option', { value }, short));
const exportButton = el('vscode-button', { appearance: 'secondary' }, 'Export PNG');
const summary = el('p', { class: 'summary', 'aria-live': 'polite' });
const figure = el('div', { class: 'figure' });
const detail = el('p', { class: 'detail', 'aria-live': 'polite' });
const legend = el(
  'div',
  { class: 'legend' },
  'CLS attention: low',
  el('span', { class: 'ramp' }),
  'high',
  el('span', { class: 'key kept' }, 'kept'),
  el('span', { class: 'key spatial' }, 'spatial supplement'),
  el('span', { class: 'key merged' }, 'merged into the hovered patch'),
);
document.getElementById('app')!.append(el('header', {}, modeSelect, exportButton), summary, figure, legend, detail);

function draw(imageSrc: string, name: string, r: InspectResult): void {
  const layout = heatmapLayout(r);
  const spatial = new Set(r.spatial);
  const clusterOf = new Map(r.kept.map((p, i) => [p, r.clusters[i] ?? []]));
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${layout.width} ${layout.height}`);
  svg.setAttribute('class', 'overlay');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `Patch grid of ${name}`);
  const cells = new Map<number, SVGRectElement>();
  for (const { patch, box, colour, role } of layout.cells) {
    const rect = document.createElementNS(SVG, 'rect');
    rect.setAttribute('x', String(box.left));
    rect.setAttribute('y', String(box.top));
    rect.setAttribute('width', String(box.right - box.left));
    rect.setAttribute('height', String(box.bottom - box.top));
    rect.setAttribute('fill', colour);
    rect.setAttribute('class', role === 'other' ? 'cell' : `cell ${role}`);
    rect.dataset['patch'] = String(patch);
    cells.set(patch, rect);
    svg.append(rect);
  }
  svg.addEventListener('mouseover', (e) => {
    const p = Number((e.target as SVGElement).dataset?.['patch']);
    for (const c of svg.querySelectorAll('.merged')) c.classList.remove('merged');
    if (!Number.isInteger(p)) return;
    const row = Math.floor(p / r.grid);
    const col = p % r.grid;
    const members = clusterOf.get(p);
    if (members && r.mode !== 'none') {
      for (const m of members) cells.get(m)?.classList.add('merged');
      detail.textContent = `Patch row ${row + 1}, column ${col + 1}: kept${spatial.has(p) ? ' by the spatial supplement' : ''}, attention ${r.clsAttention[p]!.toExponential(2)}; ${members.length} patches merged into it.`;
    } else {
      detail.textContent = `Patch row ${row + 1}, column ${col + 1}: attention ${r.clsAttention[p]!.toExponential(2)}${r.mode === 'none' ? '' : ', merged into a kept patch'}.`;
    }
  });
  const img = el('img', { src: imageSrc, alt: name, class: 'image' });
  figure.replaceChildren(el('div', { class: 'stack' }, img, svg));
  summary.textContent =
    `${name}: ${layout.headline}.` +
    (layout.paddingNote ? ` ${layout.paddingNote}` : '') +
    (r.mode === 'none' ? '' : ` Vision ${Math.round(r.timings.visionMs)} ms, reduction ${r.timings.reduceMs.toFixed(1)} ms (${r.ep}).`);
}

modeSelect.addEventListener('change', () => {
  reduce = (modeSelect as unknown as { value: string }).value;
  vscode.setState({ reduce });
  vscode.post({ type: 'changeMode', reduce });
});
exportButton.addEventListener('click', () => vscode.post({ type: 'exportPng' }));

window.addEventListener('message', (e: MessageEvent<HeatmapEvent>) => {
  const m = e.data;
  if (m.type === 'loading') {
    summary.replaceChildren(
      el('vscode-progress-ring', { 'aria-label': 'Running the vision tower' }),
      ` Running the vision tower (${m.reduce})...`,
    );
  } else if (m.type === 'heatmap') {
    draw(m.imageSrc, m.name, m.inspection);
  } else if (m.type === 'error') {
    summary.replaceChildren(el('span', { class: 'error', role: 'alert' }, m.message));
  }
});

(modeSelect as unknown as { value: string }).value = reduce;
vscode.post({ type: 'ready' });
