/**
 * The taps JSON the `reduce` command reads: { "hidden": [[...]...], "q": [[...]...], "k": [[...]...] },
 * each [N+1][C] with row 0 the CLS token; for the selections also "projected" [N][D] (the
 * projector's rows of the patches), "question" [M][D] (the question tokens' embedding rows) and
 * "score" [N] (the attention VisPruner starts from). Everything is checked before a number is used.
 */
import { ClsTaps } from '../pipeline/reduce/visionTaps';
import { CliError } from './cliError';

const FIELDS = ['hidden', 'q', 'k'] as const;

/** What the selections read beside the taps, where the file has it. */
export interface SelectionFields {
  /** (N, width) */
  readonly projected?: { readonly rows: Float32Array; readonly width: number };
  /** The mean of the question's rows. */
  readonly question?: Float64Array;
  readonly score?: Float64Array;
}

export function parseTapsJson(text: string, source: string): ClsTaps & { readonly selection: SelectionFields } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${source} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CliError(`${source} must hold an object { "hidden", "q", "k" }, each [N+1][C] numbers`);
  }
  const obj = json as Record<string, unknown>;
  const missing = FIELDS.filter((f) => !(f in obj));
  if (missing.length > 0) {
    throw new CliError(`${source} lacks ${missing.map((f) => `"${f}"`).join(', ')}: expected "hidden", "q" and "k", each [N+1][C] numbers`);
  }

  const tokens = rowsOf(obj['hidden'], 'hidden', source).length;
  const width = (rowsOf(obj['hidden'], 'hidden', source)[0] as unknown[]).length;
  if (tokens < 2) throw new CliError(`${source}: "hidden" has ${tokens} row; need N+1 >= 2 (the CLS token and at least one patch)`);
  if (width < 1) throw new CliError(`${source}: "hidden" rows are empty; need C >= 1 numbers per row`);

  const tensors = {} as Record<(typeof FIELDS)[number], Float32Array>;
  for (const field of FIELDS) {
    const rows = rowsOf(obj[field], field, source);
    if (rows.length !== tokens) {
      throw new CliError(`${source}: "${field}" has ${rows.length} rows but "hidden" has ${tokens}; all three must be [N+1][C]`);
    }
    const out = new Float32Array(tokens * width);
    for (let r = 0; r < tokens; r++) {
      const row = rows[r];
      if (!Array.isArray(row)) throw new CliError(`${source}: ${field}[${r}] is not a list of numbers`);
      if (row.length !== width) {
        throw new CliError(`${source}: ${field}[${r}] has ${row.length} numbers but hidden[0] has ${width}; every row must have C numbers`);
      }
      for (let c = 0; c < width; c++) {
        const v: unknown = row[c];
        if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isFinite(Math.fround(v))) {
          throw new CliError(`${source}: ${field}[${r}][${c}] is ${JSON.stringify(v) ?? String(v)}, not a finite float32 number`);
        }
        out[r * width + c] = v;
      }
    }
    tensors[field] = out;
  }
  return { tokens, width, ...tensors, selection: selectionFields(obj, tokens - 1, source) };
}

function selectionFields(obj: Record<string, unknown>, patches: number, source: string): SelectionFields {
  const matrix = (field: string, rows?: number): { rows: Float32Array; width: number } | undefined => {
    if (!(field in obj)) return undefined;
    const list = rowsOf(obj[field], field, source);
    if (rows !== undefined && list.length !== rows)
      throw new CliError(`${source}: "${field}" has ${list.length} rows, expected one per patch (${rows})`);
    const width = (list[0] as unknown[]).length;
    const out = new Float32Array(list.length * width);
    list.forEach((row, r) => {
      if (!Array.isArray(row) || row.length !== width) throw new CliError(`${source}: ${field}[${r}] must hold ${width} numbers`);
      row.forEach((v: unknown, c) => {
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new CliError(`${source}: ${field}[${r}][${c}] is not a finite number`);
        out[r * width + c] = v;
      });
    });
    return { rows: out, width };
  };
  const projected = matrix('projected', patches);
  const question = matrix('question');
  if (question && projected && question.width !== projected.width)
    throw new CliError(
      `${source}: "question" rows have ${question.width} numbers, "projected" rows ${projected.width}: both are the language model's width`,
    );
  let score: Float64Array | undefined;
  if ('score' in obj) {
    const v = obj['score'];
    if (!Array.isArray(v) || v.length !== patches || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw new CliError(`${source}: "score" must be ${patches} finite numbers, one per patch`);
    score = Float64Array.from(v as number[]);
  }
  const mean =
    question &&
    Float64Array.from({ length: question.width }, (_, c) => {
      let s = 0;
      for (let r = 0; r < question.rows.length / question.width; r++) s += question.rows[r * question.width + c]!;
      return s / (question.rows.length / question.width);
    });
  return { ...(projected ? { projected } : {}), ...(mean ? { question: mean } : {}), ...(score ? { score } : {}) };
}

function rowsOf(value: unknown, field: string, source: string): unknown[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new CliError(`${source}: "${field}" must be a non-empty list of rows ([N+1][C] numbers)`);
  }
  if (!Array.isArray(value[0])) throw new CliError(`${source}: ${field}[0] is not a list of numbers`);
  return value;
}
