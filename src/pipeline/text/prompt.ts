/**
 * Prompt text and token ids: the checkpoint's chat template (rendered with @huggingface/jinja),
 * its tokenizer (@huggingface/tokenizers), and each image's placeholder expanded to exactly one
 * slot per visual token of that image.
 */
import { UserError } from '../../common/errors';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ChatTurn } from '../../shared/results';

export type { ChatTurn };

/** Where one image's slots are in the prompt. */
export interface ImageSpan {
  readonly start: number;
  readonly rows: number;
}

export interface PromptIds {
  /** Token ids with as many copies of the image token as each image has rows, where the images go. */
  readonly ids: number[];
  /** Index of the first visual slot in `ids` (the end of the prompt without an image). */
  readonly imageStart: number;
  /** Each image's slots, in prompt order. */
  readonly images: readonly ImageSpan[];
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

  /** The conversation as the model was trained to see it, ending with the assistant's cue; the images, if any, in its first turn, before its text. */
  render(turns: readonly ChatTurn[], images = 1): string {
    const messages: unknown[] = [];
    turns.forEach((turn, i) => {
      const content: unknown[] = i === 0 ? Array.from({ length: images }, () => ({ type: 'image' })) : [];
      content.push({ type: 'text', text: userText(turn.question) });
      messages.push({ role: 'user', content });
      if (turn.answer !== undefined) messages.push({ role: 'assistant', content: [{ type: 'text', text: turn.answer }] });
    });
    return this.template.render({ messages, add_generation_prompt: true, bos_token: this.bosText, eos_token: this.eosText });
  }

  /**
   * Token ids of the conversation with each image's placeholder expanded to its slots: `slots`, one
   * count per image (a number: one image); undefined or none: a conversation without an image.
   */
  ids(turns: readonly ChatTurn[], slots: number | readonly number[] | undefined): PromptIds {
    const counts = slots === undefined ? [] : typeof slots === 'number' ? [slots] : slots;
    let ids = this.tokenizer.encode(this.render(turns, counts.length), { add_special_tokens: true }).ids;
    const bos = this.special.bos;
    if (bos !== null && ids[0] === bos && ids[1] === bos) ids = ids.slice(1); // template and tokenizer both added <s>
    if (counts.length === 0) return { ids, imageStart: ids.length, images: [] };
    const at = ids.flatMap((id, i) => (id === this.special.image ? [i] : []));
    if (at.length !== counts.length) {
      const expected = counts.length === 1 ? 'exactly once' : `once for each of ${counts.length} images`;
      throw new PromptError(`the chat template must place the image token ${expected}, it placed it ${at.length} times`);
    }
    const out: number[] = [];
    const images: ImageSpan[] = [];
    let from = 0;
    at.forEach((position, i) => {
      out.push(...ids.slice(from, position));
      images.push({ start: out.length, rows: counts[i]! });
      out.push(...new Array<number>(counts[i]!).fill(this.special.image));
      from = position + 1;
    });
    out.push(...ids.slice(from));
    return { ids: out, imageStart: images[0]!.start, images };
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
