/**
 * The LLaMA / Vicuna tokenizer (32000 tokens, SentencePiece BPE with byte fallback) written out
 * as Hugging Face tokenizer.json + tokenizer_config.json, plus llava-hf's two added tokens
 * (<image> = 32000, <pad> = 32001). The vocabulary and merge ranks come from the
 * llama-tokenizer-js package; the JSON follows the layout of the hub's LLaMA tokenizer.json, so
 * the demo model and synthetic models tokenise exactly as llava-1.5 does.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import llamaTokenizer from 'llama-tokenizer-js';

/** LLaVA-1.5's conversation format (llava-hf's chat template), for checkpoints that ship none. */
export const LLAVA_15_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}" +
  "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}" +
  "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}{% endfor %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

/** llava-v1.6-mistral's format, "[INST] <image>\nQUESTION [/INST]", for synthetic Mistral-text models. */
export const LLAVA_MISTRAL_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' }}" +
  "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}" +
  "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}{{ ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + eos_token + ' ' }}{% endif %}{% endfor %}";

export const LLAVA_ADDED_TOKENS = { image: { id: 32000, content: '<image>' }, pad: { id: 32001, content: '<pad>' } };

function added(id: number, content: string, special: boolean): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/** tokenizer.json for LLaMA's vocabulary with llava-hf's added tokens. */
export function llamaTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  llamaTokenizer.vocabById.forEach((token, id) => {
    vocab[token] = id;
  });
  // the merges map is keyed "left right" and ordered by rank
  const merges = [...llamaTokenizer.merges.keys()];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      added(0, '<unk>', true),
      added(1, '<s>', true),
      added(2, '</s>', true),
      added(LLAVA_ADDED_TOKENS.image.id, LLAVA_ADDED_TOKENS.image.content, true),
      added(LLAVA_ADDED_TOKENS.pad.id, LLAVA_ADDED_TOKENS.pad.content, true),
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges,
    },
  };
}

export function llamaTokenizerConfig(): Record<string, unknown> {
  return {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: '<pad>',
    clean_up_tokenization_spaces: false,
    legacy: false,
    model_max_length: 4096,
    padding_side: 'left',
    tokenizer_class: 'LlamaTokenizer',
    chat_template: LLAVA_15_CHAT_TEMPLATE,
  };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir`. */
export async function writeLlamaTokenizer(dir: string): Promise<void> {
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(llamaTokenizerJson()));
  await writeFile(join(dir, 'tokenizer_config.json'), `${JSON.stringify(llamaTokenizerConfig(), null, 2)}\n`);
}
