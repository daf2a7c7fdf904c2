/**
 * How `prumerge eval` scores an answer, as the benchmarks people quote do (docs/eval.md): VQA
 * accuracy with the VQA evaluation's answer normalisation (TextVQA, VQAv2), POPE's yes/no reading
 * with accuracy, precision, recall and F1, and exact match of the option letter for multiple
 * choice.
 */

const NUMBER_WORDS: Record<string, string> = {
  none: '0',
  zero: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
/** Contractions written without their apostrophe, as the VQA evaluation restores them (the common ones). */
const CONTRACTIONS: Record<string, string> = {
  arent: "aren't",
  cant: "can't",
  couldnt: "couldn't",
  didnt: "didn't",
  doesnt: "doesn't",
  dont: "don't",
  hasnt: "hasn't",
  havent: "haven't",
  hes: "he's",
  im: "i'm",
  isnt: "isn't",
  ive: "i've",
  shes: "she's",
  shouldnt: "shouldn't",
  thats: "that's",
  theres: "there's",
  theyre: "they're",
  wasnt: "wasn't",
  werent: "weren't",
  whats: "what's",
  wont: "won't",
  wouldnt: "wouldn't",
  youre: "you're",
};
const PUNCTUATION = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];

/**
 * An answer as the VQA evaluation compares it: punctuation dropped (or made a space where it joins
 * words), periods dropped unless a digit follows, lower case, number words as digits, articles
 * dropped, apostrophe-less contractions restored.
 */
export function normaliseAnswer(answer: string): string {
  let text = answer.replace(/[\n\t]/g, ' ').trim();
  const commaInNumber = /\d,\d/.test(text);
  for (const p of PUNCTUATION) {
    const touching = text.includes(`${p} `) || text.includes(` ${p}`) || commaInNumber;
    text = text.split(p).join(touching ? '' : ' ');
  }
  text = text.replace(/\.(?!\d)/g, '');
  return text
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w && !ARTICLES.has(w))
    .map((w) => NUMBER_WORDS[w] ?? CONTRACTIONS[w] ?? w)
    .join(' ');
}

/**
 * VQA accuracy: against each human answer left out in turn, min(1, matches among the others / 3),
 * averaged; with one reference answer, whether it matches.
 */
export function vqaAccuracy(answer: string, references: readonly string[]): number {
  const a = normaliseAnswer(answer);
  const refs = references.map(normaliseAnswer);
  if (refs.length === 1) return refs[0] === a ? 1 : 0;
  let sum = 0;
  for (let i = 0; i < refs.length; i++) {
    const matches = refs.filter((r, j) => j !== i && r === a).length;
    sum += Math.min(1, matches / 3);
  }
  return sum / refs.length;
}

/** POPE's reading of an answer: its first sentence, commas dropped, "no" where it says no, not or No. */
export function yesNo(answer: string): 'yes' | 'no' {
  const first = answer.split('.')[0]!.replace(/,/g, '');
  const words = first.split(' ');
  return words.includes('No') || words.includes('not') || words.includes('no') ? 'no' : 'yes';
}

export interface YesNoScores {
  readonly accuracy: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** How often the model said yes. */
  readonly yesRatio: number;
}

/** POPE's figures over pairs of (the model's yes or no, the label), yes the positive class; 0 where undefined. */
export function yesNoScores(pairs: readonly { readonly said: 'yes' | 'no'; readonly label: 'yes' | 'no' }[]): YesNoScores {
  const count = (said: string, label: string): number => pairs.filter((p) => p.said === said && p.label === label).length;
  const tp = count('yes', 'yes');
  const fp = count('yes', 'no');
  const tn = count('no', 'no');
  const fn = count('no', 'yes');
  const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return {
    accuracy: ratio(tp + tn, pairs.length),
    precision,
    recall,
    f1: ratio(2 * precision * recall, precision + recall),
    yesRatio: ratio(tp + fp, pairs.length),
  };
}

/** The option letter an answer gives ("B", "(B) ...", "B. ...", "The answer is B."), if any. */
export function optionLetter(answer: string): string | undefined {
  const t = answer.trim();
  const m = /^\(?([A-Z])(?:[).:\s]|$)/.exec(t) ?? /answer is \(?([A-Z])\b/i.exec(t);
  return m?.[1]?.toUpperCase();
}

/** Multiple choice: 1 when the answer's option letter is the expected one. */
export function choiceMatch(answer: string, expected: string): number {
  return optionLetter(answer) === expected.trim().toUpperCase() ? 1 : 0;
}
