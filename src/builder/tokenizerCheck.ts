/**
 * A checkpoint's tokenizer, loaded as the engine will load it, and the token ids the engine
 * needs: end of sequence, the image token, and beginning of sequence and padding where the
 * tokenizer has them. Refuses, in one line, a tokenizer the model cannot use.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ModelManifest } from '../format/modelManifest';
import { CheckpointError } from '../checkpoint/safetensors';

export interface TokenizerInputs {
  readonly tokenizerJson: unknown;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly chatTemplate: string;
}

/** Loads the tokenizer as the engine will and finds the ids the engine needs. */
export function checkTokenizer(
  inputs: TokenizerInputs,
  imageTokenIndex: number,
  vocabSize: number,
): Omit<ModelManifest['tokenizer'], 'file' | 'config'> {
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(inputs.tokenizerJson as object, inputs.tokenizerConfig);
  } catch (e) {
    throw new CheckpointError(`tokenizer.json could not be loaded: ${(e as Error).message}`);
  }
  const idOf = (key: string, fallback: string): number | undefined => {
    const v = inputs.tokenizerConfig[key];
    const content =
      typeof v === 'string' ? v : typeof (v as { content?: unknown })?.content === 'string' ? (v as { content: string }).content : fallback;
    return tokenizer.token_to_id(content);
  };
  // Qwen2's tokenizers have no beginning-of-sequence token (bos_token null)
  const bos = inputs.tokenizerConfig['bos_token'] === null ? undefined : idOf('bos_token', '<s>');
  const eos = idOf('eos_token', '</s>');
  if (eos === undefined) throw new CheckpointError('the tokenizer has no end-of-sequence token (tokenizer_config.json eos_token, or </s>)');
  const size = Object.keys((inputs.tokenizerJson as { model?: { vocab?: object } }).model?.vocab ?? {}).length;
  const largest = Math.max(size - 1, ...tokenizer.get_added_tokens_decoder().keys());
  if (largest >= vocabSize) {
    throw new CheckpointError(`the tokenizer has token ids up to ${largest}, but the language model's vocab_size is ${vocabSize}`);
  }
  const image = tokenizer.token_to_id('<image>');
  if (image !== imageTokenIndex) {
    throw new CheckpointError(
      `config.json says the image token is ${imageTokenIndex}, but the tokenizer's <image> is ${image ?? 'missing'}`,
    );
  }
  try {
    new Template(inputs.chatTemplate).render({
      messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'hi' }] }],
      add_generation_prompt: true,
    });
  } catch (e) {
    throw new CheckpointError(`the chat template cannot be rendered: ${(e as Error).message}`);
  }
  return { bosTokenId: bos ?? null, eosTokenId: eos, imageTokenId: image, padTokenId: idOf('pad_token', '<pad>') ?? null };
}
