/**
 * The token heatmap panel: the image with the patch grid mapped back onto it (padding and crop
 * undone), each patch's score (CLS attention, or attention received) as colour, kept patches outlined (dashed: spatial supplement); hovering
 * a kept patch highlights the patches merged into it. By keyboard each grid is one control: arrow,
 * Home / End and Page keys move a focus patch (src/shared/heatmapNavigation.ts), Enter pins what
 * merged into it, Escape clears; what the focus is on is said in the live region under the grid.
 */
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeDropdown, vsCodeOption, vsCodeProgressRing } from '@vscode/webview-ui-toolkit';
import { scoreName } from '../src/shared/attentionColour';
import { heatmapFigures, LegendKey, legendKeys, merges, patchScores } from '../src/shared/heatmapLayout';
import { NAV_KEYS, NavKey, navigate } from '../src/shared/heatmapNavigation';
import { pixelScale } from '../src/shared/imageGeometry';
import { cachedCropsText } from '../src/shared/imageNotes';
import type { HeatmapEvent, HeatmapRequest } from '../src/shared/webviewMessages';
import type { Inspection as InspectResult } from '../src/shared/results';
import { choicesFor, NO_DETAILS, OfferedDetails, offeredReading, reductionLabel } from '../src/shared/reductionChoices';
import { el, initialState, vscodeApi } from './vscodeApi';

provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeDropdown(), vsCodeOption(), vsCodeProgressRing());

const SVG = 'http://www.w3.org/2000/svg';
/** Images smaller than this on their longer side are drawn enlarged (CSS pixels). */
const MIN_DRAWN_SIDE = 336;
const vscode = vscodeApi<{ reduce: string }, HeatmapRequest>();
const initial = initialState<{ reduce?: string; details?: OfferedDetails }>();
const details = initial.details ?? NO_DETAILS;
const choices = choicesFor(details);
let reduce = offeredReading(vscode.getState()?.reduce ?? initial.reduce ?? 'prumerge', details);

const modeSelect = el('vscode-dropdown', { 'aria-label': 'Reduction mode' });
const modeOptions = choices.map(({ value }) => el('vscode-option', { value }, reductionLabel(value, undefined, 'short')));
modeSelect.append(...modeOptions);
// nothing to export until a heatmap is drawn
const exportButton = el('vscode-button', { appearance: 'secondary', disabled: '' }, 'Export PNG');
const summary = el('p', { class: 'summary', 'aria-live': 'polite' });
const figure = el('div', { class: 'figure' });
const detail = el('p', { class: 'detail', 'aria-live': 'polite' });
const scoreLegend = el('span', {}, `${scoreName('cls')}: low`);
const KEY_TEXT: Record<LegendKey, string> = {
  kept: 'kept',
  spatial: 'spatial supplement',
  merged: 'merged into the hovered patch',
  removed: 'removed by unpadding (padding of the tiles)',
};
const keys = el('span', { class: 'keys' });
const ramp = el('span', { class: 'ramp', role: 'img', 'aria-label': 'colour scale from dark purple (low) through green to yellow (high)' });
const legend = el('div', { class: 'legend' }, scoreLegend, ramp, 'high', keys);
// several images (a question about several): one tab each, the panel below is the selected one's
const tabs = el('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Images', hidden: '' });
const tabPanel = el('div', { role: 'tabpanel' }, summary, figure, legend, detail);
document.getElementById('app')!.append(el('header', {}, modeSelect, exportButton), tabs, tabPanel, hatch());

/** The pattern merged patches are filled with (heatmap.css), four stripes a patch whatever its size on screen. */
function hatch(): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'defs');
  svg.setAttribute('aria-hidden', 'true');
  const pattern = document.createElementNS(SVG, 'pattern');
  const attrs = {
    id: 'merged-hatch',
    patternUnits: 'objectBoundingBox',
    patternContentUnits: 'objectBoundingBox',
    width: '0.25',
    height: '0.25',
  };
  for (const [k, v] of Object.entries(attrs)) pattern.setAttribute(k, v);
  const ground = document.createElementNS(SVG, 'rect');
  for (const [k, v] of Object.entries({ width: '0.25', height: '0.25', fill: '#ffffff', 'fill-opacity': '0.7' })) ground.setAttribute(k, v);
  const stripe = document.createElementNS(SVG, 'path');
  for (const [k, v] of Object.entries({ d: 'M0,0.25 L0.25,0', stroke: '#000000', 'stroke-width': '0.05', 'stroke-opacity': '0.7' }))
    stripe.setAttribute(k, v);
  pattern.append(ground, stripe);
  const defs = document.createElementNS(SVG, 'defs');
  defs.append(pattern);
  svg.append(defs);
  return svg;
}

/** The images' tabs, the `index`th selected (the arrow keys move between them, as tabs do). */
function renderTabs(names: readonly string[], index: number): void {
  tabs.hidden = names.length < 2;
  tabs.replaceChildren(
    ...names.map((name, i) => {
      const selected = i === index;
      const tab = el(
        'button',
        { class: 'tab', role: 'tab', type: 'button', id: `tab-${i}`, 'aria-selected': String(selected), tabindex: selected ? '0' : '-1' },
        name,
      );
      tab.addEventListener('click', () => selectTab(i));
      return tab;
    }),
  );
  if (names.length > 1) tabPanel.setAttribute('aria-labelledby', `tab-${index}`);
}

function selectTab(i: number): void {
  const all = [...tabs.querySelectorAll<HTMLElement>('[role=tab]')];
  all.forEach((t, j) => {
    t.setAttribute('aria-selected', String(i === j));
    t.setAttribute('tabindex', i === j ? '0' : '-1');
  });
  all[i]?.focus();
  tabPanel.setAttribute('aria-labelledby', `tab-${i}`);
  vscode.post({ type: 'showImage', index: i });
}

tabs.addEventListener('keydown', (e) => {
  const all = [...tabs.querySelectorAll<HTMLElement>('[role=tab]')];
  const at = all.findIndex((t) => t.getAttribute('aria-selected') === 'true');
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  selectTab((to + all.length) % all.length);
});

function draw(imageSrc: string, name: string, r: InspectResult): void {
  const { headline, figures } = heatmapFigures(r);
  keys.replaceChildren(...legendKeys(r.mode, figures).map((k) => el('span', { class: `key ${k}` }, KEY_TEXT[k])));
  const subs = r.subImages ?? [r];
  const measure = scoreName(r.score, r.relevance !== undefined);
  scoreLegend.textContent = `${measure}: low`;
  const key = (sub: number, patch: number): string => `${sub}:${patch}`;
  const clusterOf = new Map(subs.flatMap((s, i) => s.kept.map((p, j) => [key(i, p), s.clusters[j] ?? []] as const)));
  const spatial = new Set(subs.flatMap((s, i) => s.spatial.map((p) => key(i, p))));
  const where = (sub: number): string => {
    const tile = r.subImages?.[sub];
    if (!tile) return '';
    return sub === 0 ? 'Overview, ' : `Tile ${tile.row + 1}, ${tile.col + 1}, `;
  };
  figure.replaceChildren(
    ...figures.map(({ title, layout }) => {
      const svg = document.createElementNS(SVG, 'svg');
      svg.setAttribute('viewBox', `0 0 ${layout.width} ${layout.height}`);
      svg.setAttribute('class', 'overlay');
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', `Patch grid of ${name}${title ? `: ${title}` : ''}`);
      const cells = new Map<string, SVGRectElement>();
      for (const { sub, patch, box, colour, role } of layout.cells) {
        const rect = document.createElementNS(SVG, 'rect');
        rect.setAttribute('x', String(box.left));
        rect.setAttribute('y', String(box.top));
        rect.setAttribute('width', String(box.right - box.left));
        rect.setAttribute('height', String(box.bottom - box.top));
        rect.setAttribute('fill', colour);
        rect.setAttribute('class', role === 'other' ? 'cell' : `cell ${role}`);
        rect.dataset['patch'] = String(patch);
        rect.dataset['sub'] = String(sub);
        cells.set(key(sub, patch), rect);
        svg.append(rect);
      }
      /** What a patch is, in words; `showMerged` also highlights the patches merged into a kept one. */
      const describe = (sub: number, p: number, removed: boolean, showMerged: boolean): string => {
        for (const c of svg.querySelectorAll('.merged')) c.classList.remove('merged');
        const at = `${where(sub)}patch row ${Math.floor(p / r.grid) + 1}, column ${(p % r.grid) + 1}`;
        const value = patchScores(subs[sub]!)[p]!;
        const attention = r.relevance ? value.toFixed(2) : value.toExponential(2);
        const members = clusterOf.get(key(sub, p));
        if (members && r.mode !== 'none' && !merges(r.mode)) {
          // the greedy selections merge nothing: their order of choice is what there is to say
          const nth = subs[sub]!.order?.indexOf(p);
          return `${at}: kept${nth !== undefined && nth >= 0 ? `, chosen ${ordinal(nth + 1)}` : ''}, ${measure} ${attention}.`;
        }
        if (members && r.mode !== 'none') {
          if (showMerged) for (const m of members) cells.get(key(sub, m))?.classList.add('merged');
          return `${at}: kept${spatial.has(key(sub, p)) ? ' by the spatial supplement' : ''}, ${measure} ${attention}; ${members.length} patches merged into it.`;
        }
        if (removed) return `${at}: padding, removed by unpadding (not a visual token).`;
        return `${at}: ${measure} ${attention}${r.mode === 'none' ? '' : merges(r.mode) ? ', merged into a kept patch' : ', not kept'}.`;
      };
      /** The keyboard's focus patch (an index into `focusable`), and whether Enter pinned its merged patches. */
      const focusable = layout.cells.filter((c) => c.role !== 'removed');
      let focus = -1;
      let pinned = false;
      const show = (index: number): void => {
        svg.querySelector('.focus')?.classList.remove('focus');
        focus = index;
        const c = focusable[index];
        if (!c) return;
        cells.get(key(c.sub, c.patch))?.classList.add('focus');
        detail.textContent = describe(c.sub, c.patch, false, pinned) + (pinned ? ' Pinned: Escape clears.' : '');
      };
      svg.setAttribute('tabindex', '0');
      svg.setAttribute('role', 'application');
      svg.setAttribute('aria-roledescription', 'patch grid');
      svg.setAttribute(
        'aria-label',
        `Patch grid of ${name}${title ? `: ${title}` : ''}. Arrow keys move between patches, Enter shows the patches merged into one, Escape clears.`,
      );
      svg.addEventListener('focus', () => show(focus < 0 ? 0 : focus));
      svg.addEventListener('keydown', (e) => {
        if ((NAV_KEYS as readonly string[]).includes(e.key)) {
          e.preventDefault();
          pinned = false;
          show(navigate(focusable, focus < 0 ? 0 : focus, e.key as NavKey, e.ctrlKey || e.metaKey));
        } else if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          pinned = true;
          show(focus < 0 ? 0 : focus);
        } else if (e.key === 'Escape' && pinned) {
          e.preventDefault();
          pinned = false;
          show(focus);
        }
      });
      svg.addEventListener('mouseover', (e) => {
        if (pinned) return; // the pinned patch stays shown until Escape
        const data = (e.target as SVGElement).dataset ?? {};
        const p = Number(data['patch']);
        const sub = Number(data['sub']);
        if (!Number.isInteger(p) || !Number.isInteger(sub)) {
          for (const c of svg.querySelectorAll('.merged')) c.classList.remove('merged');
          return;
        }
        detail.textContent = describe(sub, p, (e.target as SVGElement).classList.contains('removed'), true);
      });
      const img = el('img', { src: imageSrc, alt: name, class: 'image' });
      // an image far smaller than the panel is drawn larger, pixel for pixel, so its patches can be seen
      const scale = pixelScale(layout, MIN_DRAWN_SIDE);
      if (scale > 1) {
        img.classList.add('pixelated');
        img.style.width = `${layout.width * scale}px`;
        img.style.height = `${layout.height * scale}px`;
      }
      const stack = el('div', { class: 'stack' }, img, svg);
      return title ? el('figure', {}, el('figcaption', {}, title), stack) : stack;
    }),
  );
  const paddingNote = figures[0]!.layout.paddingNote;
  summary.textContent =
    `${name}: ${headline}.` +
    (paddingNote ? ` ${paddingNote}` : '') +
    (r.mode === 'none'
      ? ''
      : ` Vision ${Math.round(r.timings.visionMs)} ms${memory(r)}, reduction ${r.timings.reduceMs.toFixed(1)} ms (${r.ep}).`);
}

/** 1st, 2nd, 3rd, 4th... */
function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

function memory(r: InspectResult): string {
  const text = r.visionRuns === undefined ? undefined : cachedCropsText({ visionRuns: r.visionRuns, visionCached: r.visionCached });
  return text ? ` (${text})` : '';
}

modeSelect.addEventListener('change', () => {
  reduce = (modeSelect as unknown as { value: string }).value;
  vscode.setState({ reduce });
  vscode.post({ type: 'changeMode', reduce });
});
exportButton.addEventListener('click', () => vscode.post({ type: 'exportPng' }));

window.addEventListener('message', (e: MessageEvent<HeatmapEvent>) => {
  const m = e.data;
  if (m.type !== 'images') exportButton.toggleAttribute('disabled', m.type !== 'heatmap');
  if (m.type === 'images') {
    renderTabs(m.names, m.index);
  } else if (m.type === 'loading') {
    // the reading drawn: several images are each read as their question read them
    reduce = m.reduce;
    (modeSelect as unknown as { value: string }).value = reduce;
    summary.replaceChildren(
      el('vscode-progress-ring', { 'aria-label': 'Running the vision tower' }),
      ` Running the vision tower (${m.reduce})...`,
    );
  } else if (m.type === 'heatmap') {
    const r = m.inspection;
    const tokens = { total: r.total ?? r.n, subImages: r.subImages?.length ?? 1 };
    choices.forEach(({ value }, i) => (modeOptions[i]!.textContent = reductionLabel(value, tokens, 'short')));
    draw(m.imageSrc, m.name, r);
  } else if (m.type === 'error') {
    summary.replaceChildren(el('span', { class: 'error', role: 'alert' }, m.message));
  }
});

(modeSelect as unknown as { value: string }).value = reduce;
vscode.post({ type: 'ready' });
