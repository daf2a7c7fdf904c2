/**
 * The JSONL set `prumerge eval` reads: one question a line, {"image", "question", "answers",
 * "type"?}; an image path relative to the set's own folder. A line that cannot be used is kept
 * with its number and why, so that the run goes on and says so.
 */
import { dirname, isAbsolute, resolve } from 'node:path';

export type ItemType = 'open' | 'yes/no' | 'multiple choice';
const TYPES: readonly string[] = ['open', 'yes/no', 'multiple choice'] satisfies ItemType[];

export interface EvalItem {
  /** 1-based, as an editor shows it. */
  readonly line: number;
  readonly image: string;
  readonly question: string;
  readonly answers: readonly string[];
  readonly type: ItemType;
}

export interface BadLine {
  readonly line: number;
  readonly why: string;
}

export function parseEvalSet(text: string, setPath: string): { items: EvalItem[]; bad: BadLine[] } {
  const items: EvalItem[] = [];
  const bad: BadLine[] = [];
  const base = dirname(setPath);
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (!raw.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      bad.push({ line, why: `not JSON (${(e as Error).message})` });
      return;
    }
    const o = v as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return void bad.push({ line, why: 'not a JSON object' });
    if (typeof o['image'] !== 'string' || !o['image']) return void bad.push({ line, why: '"image" must be a path' });
    if (typeof o['question'] !== 'string' || !o['question'].trim()) return void bad.push({ line, why: '"question" must be text' });
    const answers = o['answers'];
    if (!Array.isArray(answers) || answers.length === 0 || !answers.every((a) => typeof a === 'string'))
      return void bad.push({ line, why: '"answers" must be a non-empty list of strings' });
    const type = o['type'] ?? 'open';
    if (typeof type !== 'string' || !TYPES.includes(type))
      return void bad.push({ line, why: `"type" must be one of ${TYPES.map((t) => `"${t}"`).join(', ')}` });
    if (type === 'yes/no' && !answers.every((a) => /^(yes|no)$/i.test(a.trim())))
      return void bad.push({ line, why: 'a yes/no item\'s answers must be "yes" or "no"' });
    const image = isAbsolute(o['image']) ? o['image'] : resolve(base, o['image']);
    items.push({ line, image, question: o['question'], answers: answers as string[], type: type as ItemType });
  });
  return { items, bad };
}
