/**
 * The chat view: attached image, conversation, question box. Model output is untrusted: it is
 * rendered as markdown with HTML disabled, and links go to the host, which opens only web links.
 */
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeDropdown, vsCodeOption, vsCodeTextArea } from '@vscode/webview-ui-toolkit';
import MarkdownIt from 'markdown-it';
import type { AskStage } from '../src/shared/results';
import { prefillText } from '../src/shared/prefillProgress';
import { applyChatEvent, interrupted } from '../src/shared/chatTranscript';
import {
  choicesFor,
  ImageTokenCount,
  NO_DETAILS,
  OfferedDetails,
  offeredReading,
  reductionLabel,
  visualTokensPhrase,
} from '../src/shared/reductionChoices';
import type { AttachedImageView, ChatAnswer, ChatEvent, ChatRequest } from '../src/shared/webviewMessages';
import { imageReadingText } from '../src/shared/webviewMessages';
import { pixelScale } from '../src/shared/imageGeometry';
import { answerFigures } from '../src/shared/answerFigures';
import { el, initialState, vscodeApi } from './vscodeApi';

provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeDropdown(), vsCodeOption(), vsCodeTextArea());

interface State {
  answers: ChatAnswer[];
  reduce: string;
  /** The reading Compare sets beside the chosen one (all tokens unless the user picks another). */
  compareWith?: string;
  /** Attached, in the question's order. */
  images: AttachedImageView[];
  maxImages?: number;
  /** Said while several are attached to a model trained on one. */
  severalNote?: string | null;
  /** Why the chat on screen began, as the host says, shown until its first question. */
  chatNote?: string | null;
  model: { name: string; randomWeights: boolean } | null;
  /** The attached image's visual tokens with the model in use, once known. */
  tokens?: ImageTokenCount | null;
  /** The model in use can read an image at low detail (LLaVA-OneVision). */
  details?: OfferedDetails;
}

const STAGE_LABELS: Record<AskStage, string> = {
  preprocess: 'Reading the image…',
  vision: 'Running the vision tower…',
  reduce: 'Merging visual tokens…',
  projector: 'Projecting visual tokens…',
  prefill: 'Reading the question…',
  decode: 'Writing…',
};

const vscode = vscodeApi<State, ChatRequest>();
/** Thumbnails smaller than this on their longer side are drawn enlarged (CSS pixels). */
const MIN_THUMBNAIL_SIDE = 96;
const md = new MarkdownIt({ html: false, linkify: true, breaks: true });
const state: State = vscode.getState() ?? {
  answers: [],
  reduce: initialState<{ reduce?: string }>().reduce ?? 'prumerge',
  images: [],
  model: null,
};
let busy = false;
/** The question sent and not yet taken: kept in the box until the host starts answering it. */
let sentQuestion: string | undefined;

state.images ??= []; // saved by a view from before a question held several
// answers left unfinished by an earlier view: the host sends them whole if it still has them
state.answers = state.answers.map((a) => interrupted(a, 'the chat view was closed while this answer was being written'));

const app = document.getElementById('app')!;
const header = el('section', { class: 'image', 'aria-label': 'Attached images' });
const notice = el('p', { class: 'notice', role: 'note' });
const conversation = el('section', { class: 'conversation', 'aria-label': 'Conversation' });
// what a screen reader hears: an answer once it has ended, not every token as it streams
const announcer = el('div', { class: 'announcer', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
const question = el('vscode-text-area', {
  placeholder: 'Ask about the image (Enter to send, Shift+Enter for a new line)',
  rows: '3',
  resize: 'vertical',
  'aria-label': 'Question',
});
const reduction = el('vscode-dropdown', { 'aria-label': 'Visual token reduction' });
const askButton = el('vscode-button', { 'aria-label': 'Ask' }, 'Ask');
const stopButton = el('vscode-button', { appearance: 'secondary', 'aria-label': 'Stop generating', hidden: '' }, 'Stop');
const compareWith = el('vscode-dropdown', { 'aria-label': 'Compare with' });
const compareButton = el('vscode-button', { appearance: 'secondary' }, 'Compare');
const newChatButton = el('vscode-button', { appearance: 'secondary', 'aria-label': 'New chat' }, 'New chat');
const footer = el(
  'footer',
  {},
  question,
  el('div', { class: 'controls' }, reduction, askButton, stopButton, compareWith, compareButton, newChatButton),
);
app.append(header, notice, conversation, footer, announcer);

function save(): void {
  vscode.setState(state);
}

/** The picker's entries and the titles, with the counts of the model in use and the attached image. */
function renderReductions(): void {
  const tokens = state.tokens ?? undefined;
  const details = state.details ?? NO_DETAILS;
  reduction.replaceChildren(...choicesFor(details).map(({ value }) => el('vscode-option', { value }, reductionLabel(value, tokens))));
  state.reduce = offeredReading(state.reduce, details);
  (reduction as unknown as { value: string }).value = state.reduce;
  reduction.title = `How ${visualTokensPhrase(tokens)} are reduced`;
  compareWith.replaceChildren(
    ...choicesFor(details).map(({ value }) => el('vscode-option', { value }, reductionLabel(value, tokens, 'short'))),
  );
  state.compareWith = offeredReading(state.compareWith ?? 'none', details);
  (compareWith as unknown as { value: string }).value = state.compareWith;
  compareWith.title = 'The reading Compare answers with first, beside the chosen one';
  renderCompare();
}

/** Compare answers with two readings: the same one twice would show one answer twice. */
function renderCompare(): void {
  const tokens = state.tokens ?? undefined;
  const same = state.compareWith === state.reduce;
  compareButton.toggleAttribute('disabled', busy || same);
  compareButton.title = same
    ? 'Pick a different reading to compare with'
    : state.compareWith === 'none'
      ? `Answer with all of ${visualTokensPhrase(tokens)} and with the chosen reduction, side by side`
      : `Answer with ${reductionLabel(state.compareWith ?? 'none', tokens, 'short')} and with the chosen reduction, side by side`;
}

function renderHeader(): void {
  header.replaceChildren();
  const images = state.images ?? [];
  if (images.length > 0) {
    const max = state.maxImages ?? images.length;
    const list = el('ul', { class: 'attached', 'aria-label': `${images.length} of at most ${max} images` }, ...images.map(attachedItem));
    const actions = el('div', { class: 'image-actions' });
    if (images.length < max) {
      const add = linkButton('Add image', () => vscode.post({ type: 'pickImage' }));
      add.title = `Ask about several images at once (at most ${max}): pick one, drop one here (hold Shift) or paste a screenshot`;
      actions.append(add);
    }
    const heat = linkButton(images.length > 1 ? 'Show heatmaps' : 'Show heatmap', () =>
      vscode.post({ type: 'showHeatmap', reduce: state.reduce }),
    );
    actions.append(heat);
    header.append(list, actions);
    if (state.severalNote) header.append(el('p', { class: 'image-warning', role: 'note' }, state.severalNote));
  } else {
    header.append(
      el(
        'p',
        {},
        'No image yet. Right-click an image in the Explorer and choose ',
        el('strong', {}, 'Ask About Image...'),
        ', drop one here (hold Shift), paste a screenshot, or ',
      ),
      linkButton('choose images from the workspace', () => vscode.post({ type: 'pickImage' })),
    );
  }
  notice.replaceChildren(
    ...(state.model?.randomWeights
      ? [
          `${state.model.name}: random weights. Its answers are meaningless: `,
          linkButton('get a real model', () => vscode.post({ type: 'getModel' })),
          ' (download and build in one step), or "PruMerge Vision: Use Model Folder..." for one you have.',
        ]
      : []),
  );
  notice.hidden = !state.model?.randomWeights;
}

/** One attached image: its thumbnail, name, what is known of it, and a button that takes it off the question. */
function attachedItem(image: AttachedImageView): HTMLElement {
  const remove = el(
    'button',
    { class: 'remove', type: 'button', 'aria-label': `Remove ${image.name}`, title: `Remove ${image.name}` },
    '×',
  );
  remove.addEventListener('click', () => vscode.post({ type: 'removeImage', key: image.key }));
  const item = el(
    'li',
    { class: 'attached-image', 'data-key': image.key },
    thumbnail(image.src, image.name),
    el(
      'div',
      { class: 'image-name' },
      image.name,
      image.pasted ? el('span', { class: 'pasted' }, ' (pasted; kept in the extension storage)') : '',
    ),
    remove,
  );
  if (image.warning) item.append(el('p', { class: 'image-warning', role: 'alert' }, image.warning));
  if (image.reading) item.append(el('p', { class: 'image-reading', role: 'status' }, imageReadingText(image.reading)));
  return item;
}

/** An attached image, drawn larger pixel for pixel when it is tiny; a file that cannot be shown says so. */
function thumbnail(src: string, name: string): HTMLElement {
  const img = el('img', { src, alt: `Attached image ${name}`, class: 'thumbnail' }) as HTMLImageElement;
  img.addEventListener('load', () => {
    const scale = pixelScale({ width: img.naturalWidth, height: img.naturalHeight }, MIN_THUMBNAIL_SIDE);
    if (scale === 1) return;
    img.classList.add('pixelated');
    img.style.width = `${img.naturalWidth * scale}px`;
  });
  img.addEventListener('error', () => img.replaceWith(el('span', { class: 'thumbnail no-preview' }, 'No preview')));
  return img;
}

function linkButton(label: string, onClick: () => void): HTMLElement {
  const b = el('vscode-button', { appearance: 'secondary' }, label);
  b.addEventListener('click', onClick);
  return b;
}

function renderAnswer(a: ChatAnswer): HTMLElement {
  const body = el('div', { class: 'answer-text' });
  body.innerHTML = md.render(a.text || (a.done ? '' : '…'));
  const parts: HTMLElement[] = a.reduce
    ? [el('div', { class: 'mode' }, reductionLabel(a.reduce, undefined))] // the figures below give the counts
    : [];
  if (a.note) parts.push(el('p', { class: 'note', role: 'note' }, a.note));
  parts.push(body);
  if (!a.done && !a.text && a.stage) {
    const label = a.stage === 'prefill' && a.prefill ? `${prefillText(a.prefill)}…` : STAGE_LABELS[a.stage];
    parts.push(el('p', { class: 'stage' }, label));
  }
  if (a.error) parts.push(el('p', { class: 'error', role: 'alert' }, a.error));
  if (a.stats) {
    const copy = linkButton('Copy', () => vscode.post({ type: 'copy', text: a.text }));
    const heat = linkButton('Heatmap', () => vscode.post({ type: 'showHeatmap', reduce: a.reduce, answerId: a.id }));
    const names = (a.images ?? []).map((i) => i.name).join(', ');
    heat.title = names ? `The visual tokens of ${names} in this answer` : 'The visual tokens of this answer';
    parts.push(el('div', { class: 'stats' }, el('span', {}, answerFigures(a.stats)), copy, heat));
  }
  return el('article', { class: `answer${a.done ? '' : ' streaming'}`, 'data-id': a.id, 'aria-busy': String(!a.done) }, ...parts);
}

function renderConversation(): void {
  conversation.replaceChildren();
  if (state.chatNote && state.answers.length === 0) conversation.append(el('p', { class: 'note', role: 'note' }, state.chatNote));
  const groups = new Map<string, ChatAnswer[]>();
  for (const a of state.answers) groups.set(a.group, [...(groups.get(a.group) ?? []), a]);
  let previousImage: string | undefined;
  for (const answers of groups.values()) {
    const row = el('div', { class: answers.length > 1 ? 'exchange compare' : 'exchange' }, ...answers.map(renderAnswer));
    const about = (answers[0]!.images ?? []).map((i) => i.name).join(', ');
    const heading = el('div', { class: 'question', role: 'heading', 'aria-level': '3' }, answers[0]!.question);
    // images added or removed mid-chat: each question says what it was about
    if (about && previousImage && about !== previousImage) heading.prepend(el('span', { class: 'about' }, `About ${about}: `));
    if (about) previousImage = about;
    conversation.append(heading, row);
  }
  conversation.scrollTop = conversation.scrollHeight;
}

function setBusy(b: boolean): void {
  busy = b;
  askButton.toggleAttribute('disabled', b);
  renderCompare();
  stopButton.hidden = !b;
}

function send(compare: boolean): void {
  const text = (question as unknown as { value: string }).value.trim();
  if (!text || busy) return;
  sentQuestion = text;
  vscode.post({
    type: 'ask',
    question: text,
    reduce: state.reduce,
    compare,
    ...(compare ? { compareWith: state.compareWith ?? 'none' } : {}),
  });
  // the buttons are disabled while it answers: the focus stays where the next question goes
  (question as HTMLElement).focus();
}

askButton.addEventListener('click', () => send(false));
compareButton.addEventListener('click', () => send(true));
stopButton.addEventListener('click', () => {
  vscode.post({ type: 'stop' });
  (question as HTMLElement).focus(); // Stop hides itself: its focus goes back to the question
});
newChatButton.addEventListener('click', () => vscode.post({ type: 'newChat' }));
reduction.addEventListener('change', () => {
  state.reduce = (reduction as unknown as { value: string }).value;
  renderCompare();
  save();
});
compareWith.addEventListener('change', () => {
  state.compareWith = (compareWith as unknown as { value: string }).value;
  renderCompare();
  save();
});
question.addEventListener('keydown', (e: KeyboardEvent) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    send(false);
  } else if (e.key === 'Escape' && busy) {
    vscode.post({ type: 'stop' });
  }
});

// links in answers: never followed here; the host opens web links after this click
conversation.addEventListener('click', (e) => {
  const a = (e.target as HTMLElement).closest('a');
  if (!a) return;
  e.preventDefault();
  vscode.post({ type: 'openLink', href: a.getAttribute('href') ?? '' });
});

// drop an image from the Explorer (VS Code asks for Shift while dragging over a webview)
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  const list = e.dataTransfer?.getData('application/vnd.code.uri-list') || e.dataTransfer?.getData('text/uri-list') || '';
  const uri = list.split(/\r?\n/).find((l) => l && !l.startsWith('#'));
  if (uri) vscode.post({ type: 'dropImage', uri });
});

// paste a screenshot
document.addEventListener('paste', (e) => {
  const item = [...(e.clipboardData?.items ?? [])].find((i) => i.type.startsWith('image/'));
  const file = item?.getAsFile();
  if (!file) return;
  e.preventDefault();
  const reader = new FileReader();
  reader.onload = () => vscode.post({ type: 'pasteImage', dataUrl: String(reader.result) });
  reader.readAsDataURL(file);
});

window.addEventListener('message', (e: MessageEvent<ChatEvent>) => {
  const m = e.data;
  const touched = applyChatEvent(state.answers, m);
  switch (m.type) {
    case 'state':
      state.images = [...m.images];
      state.maxImages = m.maxImages;
      state.severalNote = m.severalNote;
      state.model = m.model;
      state.tokens = m.tokens;
      state.details = m.details;
      state.chatNote = m.chatNote;
      renderHeader();
      renderReductions();
      renderConversation();
      break;
    case 'answerStart':
    case 'answerNotRun':
      state.chatNote = null;
      if (sentQuestion === m.question && (question as unknown as { value: string }).value.trim() === m.question)
        (question as unknown as { value: string }).value = '';
      sentQuestion = undefined;
      renderConversation();
      break;
    case 'answerStage':
    case 'answerPrefill':
    case 'answerDelta': {
      // only this answer's node changes while it streams
      const node = touched && conversation.querySelector(`[data-id="${CSS.escape(touched.id)}"]`);
      if (node) node.replaceWith(renderAnswer(touched));
      break;
    }
    case 'answerError':
      renderConversation();
      break;
    case 'answerEnd':
      renderConversation();
      if (touched) announcer.textContent = `Answer${touched.stats?.stopReason === 'cancelled' ? ' (stopped)' : ''}: ${touched.text}`;
      break;
    case 'cleared':
      renderConversation();
      break;
    case 'transcript':
      setBusy(m.busy);
      renderConversation();
      break;
    case 'busy':
      setBusy(m.busy);
      break;
    case 'imageReading':
      state.images = state.images.map((i) => (i.key === m.key ? { ...i, reading: { done: m.done, total: m.total } } : i));
      renderHeader();
      break;
    case 'focusQuestion':
      (question as HTMLElement).focus();
      break;
  }
  save();
});

renderHeader();
renderReductions();
renderConversation();
vscode.post({ type: 'ready' });
