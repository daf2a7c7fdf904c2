/** The tensors of a LLaMA-like text model (LLaMA, Mistral, Qwen2), by hub name. */
import { linearSpecs, TensorSpec } from '../../../checkpoint/tensorSpec';
import { LM_HEAD, TEXT } from '../../../checkpoint/weights';
import type { TextConfig } from '../../family';

export function llamaTensors(t: TextConfig): TensorSpec[] {
  const h = t.hiddenSize;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const bias = t.attentionBias;
  const specs: TensorSpec[] = [{ name: `${TEXT}.embed_tokens.weight`, shape: [t.vocabSize, h], init: 'embedding' }];
  for (let i = 0; i < t.numLayers; i++) {
    const p = `${TEXT}.layers.${i}`;
    specs.push(...linearSpecs(`${p}.self_attn.q_proj`, h, q, bias), ...linearSpecs(`${p}.self_attn.k_proj`, h, kv, bias));
    specs.push(...linearSpecs(`${p}.self_attn.v_proj`, h, kv, bias), ...linearSpecs(`${p}.self_attn.o_proj`, q, h, false));
    specs.push(
      ...linearSpecs(`${p}.mlp.gate_proj`, h, t.intermediateSize, false),
      ...linearSpecs(`${p}.mlp.up_proj`, h, t.intermediateSize, false),
    );
    specs.push(...linearSpecs(`${p}.mlp.down_proj`, t.intermediateSize, h, false));
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [h], init: 'norm' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [h], init: 'norm' },
    );
  }
  specs.push({ name: `${TEXT}.norm.weight`, shape: [h], init: 'norm' });
  if (!t.tieWordEmbeddings) specs.push({ name: LM_HEAD, shape: [t.vocabSize, h], init: 'weight' });
  return specs;
}
