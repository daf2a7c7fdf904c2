/**
 * `prumerge bench`'s follow-up rows: a second question in our chat (it continues the
 * conversation's KV cache) and in VS Code's chat (the whole conversation sent again, standalone,
 * continuing a kept conversation: docs/vscode-chat.md), in the same run.
 */
import type { Engine } from '../pipeline/engine/engine';
import type { AskRequest } from '../pipeline/engine/request';
import { Detail, parseReduceMode } from '../shared/reduceMode';

export interface FollowUpRun {
  /** Our chat's follow-up: first token, ms. */
  readonly chatTtftMs: number;
  /** VS Code's chat's second request: first token, vision, the tokens reused of its prompt, and the first request's prompt. */
  readonly vscodeTtftMs: number;
  readonly vscodeVisionMs: number;
  readonly vscodeReusedTokens: number;
  readonly vscodePromptTokens: number;
  readonly firstPromptTokens: number;
}

const FOLLOW_UP = 'Which part of it matters most?';

export async function benchFollowUps(
  engine: Engine,
  image: string,
  question: string,
  tokens: number,
  detail: Detail,
): Promise<FollowUpRun> {
  const ask = (extra: Partial<AskRequest>): ReturnType<Engine['ask']> =>
    engine.ask({ image, question, reduce: parseReduceMode('prumerge'), detail, maxNewTokens: tokens, fixedLength: true, ...extra });
  engine.newConversation();
  await ask({});
  const chat = await ask({ question: FOLLOW_UP, followUp: true });
  const first = await ask({ standalone: true });
  const vscode = await ask({ question: FOLLOW_UP, standalone: true, history: [{ question, answer: first.answer }] });
  return {
    chatTtftMs: chat.timings.ttftMs,
    vscodeTtftMs: vscode.timings.ttftMs,
    vscodeVisionMs: vscode.timings.visionMs,
    vscodeReusedTokens: vscode.reusedTokens,
    vscodePromptTokens: vscode.promptTokens,
    firstPromptTokens: first.promptTokens,
  };
}

export function followUpLine(r: FollowUpRun): string {
  return (
    `prumerge, a follow-up: our chat ${r.chatTtftMs.toFixed(0)} ms to the first token; VS Code's chat (the conversation resent) ` +
    `${r.vscodeTtftMs.toFixed(0)} ms (${(r.vscodeTtftMs / r.chatTtftMs).toFixed(2)}x), vision ${r.vscodeVisionMs.toFixed(0)} ms, ` +
    `${r.vscodeReusedTokens} of ${r.vscodePromptTokens} prompt tokens reused (the first request's prompt: ${r.firstPromptTokens})`
  );
}
