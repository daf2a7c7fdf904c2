/** `prumerge eval`'s figures per reading, from the scored answers, and the table that shows them. */
import type { ItemType } from './evalSet';
import { YesNoScores, yesNoScores } from './scoring';

/** One scored answer, as a line of the results file. */
export interface Outcome {
  readonly model: string;
  readonly reading: string;
  readonly line: number;
  readonly question: string;
  readonly type: ItemType;
  readonly answer: string;
  /** 0..1: VQA accuracy, or whether the yes/no or the option was right. */
  readonly score: number;
  readonly said?: 'yes' | 'no';
  readonly label?: 'yes' | 'no';
  readonly visualTokens: number;
  readonly totalVisualTokens: number;
  readonly ttftMs: number;
}

export interface ReadingSummary {
  readonly reading: string;
  readonly answers: number;
  readonly open?: { readonly n: number; readonly vqaAccuracy: number };
  readonly yesNo?: { readonly n: number } & YesNoScores;
  readonly choice?: { readonly n: number; readonly accuracy: number };
  readonly meanVisualTokens: number;
  readonly meanTtftMs: number;
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

export function summarise(readings: readonly string[], outcomes: readonly Outcome[]): ReadingSummary[] {
  return readings.map((reading) => {
    const mine = outcomes.filter((o) => o.reading === reading);
    const of = (t: ItemType): Outcome[] => mine.filter((o) => o.type === t);
    const open = of('open');
    const yn = of('yes/no');
    const mc = of('multiple choice');
    return {
      reading,
      answers: mine.length,
      ...(open.length ? { open: { n: open.length, vqaAccuracy: mean(open.map((o) => o.score)) } } : {}),
      ...(yn.length ? { yesNo: { n: yn.length, ...yesNoScores(yn.map((o) => ({ said: o.said!, label: o.label! }))) } } : {}),
      ...(mc.length ? { choice: { n: mc.length, accuracy: mean(mc.map((o) => o.score)) } } : {}),
      meanVisualTokens: mean(mine.map((o) => o.visualTokens)),
      meanTtftMs: mean(mine.map((o) => o.ttftMs)),
    };
  });
}

const pct = (x: number): string => (100 * x).toFixed(1);

export function evalTable(rows: readonly ReadingSummary[]): string {
  const header = ['reading', 'answers', 'open: VQA acc', 'yes/no: acc / P / R / F1', 'choice: acc', 'visual tokens', 'first token'];
  const body = rows.map((r) => [
    r.reading,
    String(r.answers),
    r.open ? `${pct(r.open.vqaAccuracy)} (${r.open.n})` : '-',
    r.yesNo ? `${pct(r.yesNo.accuracy)} / ${pct(r.yesNo.precision)} / ${pct(r.yesNo.recall)} / ${pct(r.yesNo.f1)} (${r.yesNo.n})` : '-',
    r.choice ? `${pct(r.choice.accuracy)} (${r.choice.n})` : '-',
    r.meanVisualTokens.toFixed(1),
    `${Math.round(r.meanTtftMs)} ms`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  return [header, ...body]
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
