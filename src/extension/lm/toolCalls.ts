/**
 * Tool calling for VS Code's chat (its chat view offers only models that take tools): the tools
 * go into the prompt as Qwen2's chat template writes them (a `# Tools` block with each tool's
 * JSON signature inside <tools></tools>), the model calls one by answering
 * <tool_call>{"name": ..., "arguments": {...}}</tool_call>, and results come back inside
 * <tool_response></tool_response>. LLaVA-1.5's and LLaVA-NeXT's templates have no tool format
 * and their models were not trained on one: they get the same text. No vscode import.
 * docs/vscode-chat.md, "Tools".
 */

export interface ToolSignature {
  readonly name: string;
  readonly description: string;
  readonly inputSchema?: object | undefined;
}

/** The text that tells the model which tools it may call and how, as Qwen2.5's template does. */
export function toolsPrompt(tools: readonly ToolSignature[]): string {
  const signatures = tools.map((t) =>
    JSON.stringify({ type: 'function', function: { name: t.name, description: t.description, parameters: t.inputSchema ?? {} } }),
  );
  return [
    '# Tools',
    '',
    'You may call one or more functions to assist with the user query.',
    '',
    'You are provided with function signatures within <tools></tools> XML tags:',
    '<tools>',
    ...signatures,
    '</tools>',
    '',
    'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:',
    '<tool_call>',
    '{"name": <function-name>, "arguments": <args-json-object>}',
    '</tool_call>',
  ].join('\n');
}

/** An earlier call, as the model wrote it. */
export function toolCallText(name: string, input: object): string {
  return `<tool_call>\n${JSON.stringify({ name, arguments: input })}\n</tool_call>`;
}

/** A tool's result, as the model reads it. */
export function toolResultText(text: string): string {
  return `<tool_response>\n${text}\n</tool_response>`;
}

export type StreamedPart =
  { readonly kind: 'text'; readonly text: string } | { readonly kind: 'call'; readonly name: string; readonly input: object };

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

/**
 * Splits the streamed answer into text and tool calls: text is passed on as it comes, except
 * what may be the start of a call, which waits until it is known. A call that does not parse,
 * or names a tool not offered, is passed on as the text it was.
 */
export class ToolCallStream {
  private pending = '';

  constructor(private readonly tools: ReadonlySet<string>) {}

  push(delta: string): StreamedPart[] {
    this.pending += delta;
    const out: StreamedPart[] = [];
    for (;;) {
      const open = this.pending.indexOf(OPEN);
      if (open < 0) {
        // keep back a tail that could be the start of "<tool_call>"
        const keep = partialPrefix(this.pending, OPEN);
        pushText(out, this.pending.slice(0, this.pending.length - keep));
        this.pending = this.pending.slice(this.pending.length - keep);
        return out;
      }
      pushText(out, this.pending.slice(0, open));
      const close = this.pending.indexOf(CLOSE, open);
      if (close < 0) {
        this.pending = this.pending.slice(open);
        return out;
      }
      const block = this.pending.slice(open, close + CLOSE.length);
      out.push(this.parse(block));
      this.pending = this.pending.slice(close + CLOSE.length);
    }
  }

  /** The answer ended: whatever was held back is text. */
  end(): StreamedPart[] {
    const out: StreamedPart[] = [];
    pushText(out, this.pending);
    this.pending = '';
    return out;
  }

  private parse(block: string): StreamedPart {
    try {
      const call = JSON.parse(block.slice(OPEN.length, -CLOSE.length).trim()) as { name?: unknown; arguments?: unknown };
      const args = typeof call.arguments === 'string' ? (JSON.parse(call.arguments) as unknown) : (call.arguments ?? {});
      if (typeof call.name === 'string' && this.tools.has(call.name) && typeof args === 'object' && args !== null && !Array.isArray(args)) {
        return { kind: 'call', name: call.name, input: args };
      }
    } catch {
      // not JSON: the model wrote the tags without a call
    }
    return { kind: 'text', text: block };
  }
}

function pushText(out: StreamedPart[], text: string): void {
  if (text) out.push({ kind: 'text', text });
}

/** The length of the longest end of `text` that begins `token`. */
function partialPrefix(text: string, token: string): number {
  for (let n = Math.min(token.length - 1, text.length); n > 0; n--) if (token.startsWith(text.slice(text.length - n))) return n;
  return 0;
}
