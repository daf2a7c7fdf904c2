/**
 * Prompt text and token ids: the checkpoint's chat template (rendered with @huggingface/jinja),
 * its tokenizer (@huggingface/tokenizers), and the image placeholder expanded to exactly one slot
 * per visual token.
 */
import { UserError } from '../../common/errors';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ChatTurn } from '../../shared/results';

export type { ChatTurn };

export interface PromptIds {
  /** Token ids with `slots` copies of the image token where the image goes. */
  readonly ids: number[];
  /** Index of the first visual slot in `ids`. */
  readonly imageStart: number;
}

export class PromptError extends UserError {
  override readonly name = 'PromptError';
}

export class PromptBuilder {
  private readonly template: Template;

  constructor(
    readonly tokenizer: Tokenizer,
    chatTemplate: string,
    private readonly special: { readonly bos: number | null; readonly eos: number; readonly image: number },
    private readonly bosText = '<s>',
    private readonly eosText = '</s>',
  ) {
    this.template = new Template(chatTemplate);
  }

  /** The conversation as the model was trained to see it, ending with the assistant's cue; the image, if any, in its first turn. */
  render(turns: readonly ChatTurn[], withImage = true): string {
    const messages: unknown[] = [];
    turns.forEach((turn, i) => {
      const content: unknown[] = i === 0 && withImage ? [{ type: 'image' }] : [];
      content.push({ type: 'text', text: userText(turn.question) });
      messages.push({ role: 'user', content });
      if (turn.answer !== undefined) messages.push({ role: 'assistant', content: [{ type: 'text', text: turn.answer }] });
    });
    return this.template.render({ messages, add_generation_prompt: true, bos_token: this.bosText, eos_token: this.eosText });
  }

  /**
   * Token ids of the conversation with the image placeholder expanded to `slots` slots; `slots`
   * undefined: a conversation without an image (imageStart is then the end of the prompt).
   */
  ids(turns: readonly ChatTurn[], slots: number | undefined): PromptIds {
    let ids = this.tokenizer.encode(this.render(turns, slots !== undefined), { add_special_tokens: true }).ids;
    const bos = this.special.bos;
    if (bos !== null && ids[0] === bos && ids[1] === bos) ids = ids.slice(1); // template and tokenizer both added <s>
    if (slots === undefined) return { ids, imageStart: ids.length };
    const at = ids.indexOf(this.special.image);
    if (at < 0 || ids.indexOf(this.special.image, at + 1) >= 0) {
      throw new PromptError('the chat template must place the image token exactly once');
    }
    return { ids: [...ids.slice(0, at), ...new Array<number>(slots).fill(this.special.image), ...ids.slice(at + 1)], imageStart: at };
  }

  decode(ids: readonly number[]): string {
    if (ids.length === 0) return ''; // the tokenizer refuses an empty list: an answer may be empty (EOS first)
    return this.tokenizer.decode([...ids], { skip_special_tokens: true });
  }
}

/**
 * Special-token text typed by the user stays text: "<image>" would otherwise become a second
 * image, and ChatML's "<|im_end|>" would end the user's turn.
 */
function userText(text: string): string {
  return text.replace(/<(\/?)(image|s|pad|unk)>/gi, '‹$1$2›').replace(/<\|/g, '‹|');
}
