/**
 * A byte-level BPE tokenizer in the layout of Qwen2's tokenizer.json (NFC, Qwen2's split regex,
 * GPT-2's byte-to-character table, ChatML's special tokens), for synthetic builds of Qwen2 text
 * models: every byte is a token and no merges are learned, so any text round-trips. Real
 * checkpoints bring their own tokenizer.json, read by the same library.
 */

/** Qwen2's pre-tokenizer split, as in its tokenizer.json. */
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * LLaVA-OneVision's conversation format (ChatML with a default system turn; images before the
 * text of their turn), written for synthetic builds.
 */
export const CHATML_IMAGE_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
  "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' }}" +
  "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}" +
  "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}" +
  "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others move to 256 + i. */
function byteCharacters(): string[] {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const chars: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(printable(b) ? b : 256 + extra++));
  return chars;
}

function added(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** The special tokens' ids: Qwen2's order, ending at the image token. */
export function chatmlIds(imageTokenId: number): { endOfText: number; imStart: number; imEnd: number; image: number } {
  return { endOfText: imageTokenId - 3, imStart: imageTokenId - 2, imEnd: imageTokenId - 1, image: imageTokenId };
}

export function qwen2TokenizerJson(imageTokenId: number): Record<string, unknown> {
  if (imageTokenId < 259) throw new Error(`the image token id ${imageTokenId} would collide with the 256 byte tokens`);
  const vocab: Record<string, number> = {};
  byteCharacters().forEach((ch, id) => {
    vocab[ch] = id;
  });
  const ids = chatmlIds(imageTokenId);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      added(ids.endOfText, '<|endoftext|>'),
      added(ids.imStart, '<|im_start|>'),
      added(ids.imEnd, '<|im_end|>'),
      added(ids.image, '<image>'),
    ],
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [{ type: 'Split', pattern: { Regex: QWEN2_SPLIT }, behavior: 'Isolated', invert: false }, byteLevel],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}

export function qwen2TokenizerConfig(): Record<string, unknown> {
  return {
    add_prefix_space: false,
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: 32768,
    padding_side: 'right',
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    chat_template: CHATML_IMAGE_TEMPLATE,
  };
}
