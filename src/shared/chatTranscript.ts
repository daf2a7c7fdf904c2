/**
 * What each chat event does to the conversation's answers. The host keeps the transcript with it
 * (a hidden view loses its page, while answers go on), and the webview shows it: one reducer,
 * so the two never disagree.
 */
import type { ChatAnswer, ChatEvent } from './webviewMessages';

/** `a` as finished with `why` when it was still being written (a view closed, a window reloaded), else `a`. */
export function interrupted(a: ChatAnswer, why: string): ChatAnswer {
  return a.done ? a : { ...a, done: true, stage: undefined, prefill: undefined, error: `Interrupted: ${why}.` };
}

/** An error that belongs to no answer (no image attached, a refused request) takes a place of its own. */
function standaloneError(answers: ChatAnswer[], message: string): ChatAnswer {
  const id = `error-${answers.length}`;
  const a: ChatAnswer = { id, group: id, question: '', reduce: '', text: '', error: message, done: true };
  answers.push(a);
  return a;
}

/** Applies `event` to `answers` in place; returns the answer it touched, if any. */
export function applyChatEvent(answers: ChatAnswer[], event: ChatEvent): ChatAnswer | undefined {
  const find = (id: string): ChatAnswer | undefined => answers.find((a) => a.id === id);
  switch (event.type) {
    case 'answerStart': {
      const { id, group, question, reduce, images } = event;
      const a: ChatAnswer = { id, group, question, reduce, ...(images ? { images } : {}), text: '', done: false };
      answers.push(a);
      return a;
    }
    case 'answerNotRun': {
      const { id, group, question, reduce, note } = event;
      const a: ChatAnswer = { id, group, question, reduce, note, text: '', done: true };
      answers.push(a);
      return a;
    }
    case 'answerStage': {
      const a = find(event.id);
      if (a && !a.text) a.stage = event.stage;
      return a;
    }
    case 'answerPrefill': {
      const a = find(event.id);
      if (a && !a.text) a.prefill = event.progress;
      return a;
    }
    case 'answerDelta': {
      const a = find(event.id);
      if (a) {
        a.text += event.delta;
        a.stage = undefined;
        a.prefill = undefined;
      }
      return a;
    }
    case 'answerEnd': {
      const a = find(event.id);
      if (a)
        Object.assign(a, { text: event.answer, stats: event.stats, note: event.note, stage: undefined, prefill: undefined, done: true });
      return a;
    }
    case 'answerError': {
      const a = find(event.id);
      if (a) Object.assign(a, { error: event.message, stage: undefined, prefill: undefined, done: true });
      return a ?? standaloneError(answers, event.message);
    }
    case 'cleared':
      answers.length = 0;
      return undefined;
    case 'transcript':
      answers.splice(0, answers.length, ...event.answers.map((a) => ({ ...a })));
      return undefined;
    default:
      return undefined;
  }
}
