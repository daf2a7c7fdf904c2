import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { floatToHalf, halfToFloat } from '../../../src/common/float16';
import { llavaConfigFromJson } from '../../../src/families/llavaConfig';
import { CheckpointError, readSafetensorsHeader, SafetensorsCheckpoint } from '../../../src/checkpoint/safetensors';
import { writeSafetensors } from '../../../src/checkpoint/safetensorsWriter';
import { scratchDir } from '../../helpers/checkpoints';

/** A safetensors file from a header object and raw data, byte by byte. */
function rawFile(header: unknown, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

describe('half and bfloat16 conversion', () => {
  it('decodes hand-picked half bit patterns', () => {
    assert.equal(halfToFloat(0x3c00), 1);
    assert.equal(halfToFloat(0xc000), -2);
    assert.equal(halfToFloat(0x7bff), 65504);
    assert.equal(halfToFloat(0x0001), 2 ** -24);
    assert.equal(halfToFloat(0x0400), 2 ** -14);
    assert.equal(halfToFloat(0x7c00), Infinity);
    assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  });

  it('encodes with round-to-nearest-even, overflow and subnormals', () => {
    assert.equal(floatToHalf(1), 0x3c00);
    assert.equal(floatToHalf(65504), 0x7bff);
    assert.equal(floatToHalf(70000), 0x7c00);
    assert.equal(floatToHalf(2 ** -24), 0x0001);
    assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // halfway between 1 and 1 + 2^-10: to even
    assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // halfway, rounds up to even
    assert.equal(floatToHalf(-0.5), 0xb800);
  });
});

describe('safetensors reading', () => {
  it('reads F32, F16 and BF16 tensors back as float32', async () => {
    const dir = scratchDir('st');
    const values = Float32Array.of(1, -2, 0.5, 65504, 2 ** -24, 0);
    await writeSafetensors(join(dir, 'a.safetensors'), [{ name: 'x', shape: [2, 3], data: values }], 'F32');
    await writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'x', shape: [2, 3], data: values }], 'F16');
    const ckpt = await SafetensorsCheckpoint.open(dir);
    assert.deepEqual([...(await ckpt.read('x'))], [...values]); // all exactly representable in half
    assert.deepEqual(ckpt.entry('x')?.shape, [2, 3]);
    await ckpt.close();

    // bf16 by hand: 1.0 = 0x3f80, -2.5 = 0xc020, 3.140625 = 0x4049
    const bf = new Uint16Array([0x3f80, 0xc020, 0x4049]);
    writeFileSync(
      join(dir, 'model.safetensors'),
      rawFile({ y: { dtype: 'BF16', shape: [3], data_offsets: [0, 6] } }, new Uint8Array(bf.buffer)),
    );
    const c2 = await SafetensorsCheckpoint.open(dir);
    assert.deepEqual([...(await c2.read('y'))], [1, -2.5, 3.140625]);
    await c2.close();
  });

  const bad: [string, () => Buffer, RegExp][] = [
    [
      'offsets that disagree with the shape',
      () => rawFile({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 12] } }, new Uint8Array(16)),
      /hold 12 bytes, but F32 \[4\] needs 16/,
    ],
    [
      'offsets past the end of the file',
      () => rawFile({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)),
      /past the end of the data .*truncated/,
    ],
    [
      'overlapping tensors',
      () =>
        rawFile(
          { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
          new Uint8Array(12),
        ),
      /overlap/,
    ],
    [
      'an unsupported dtype',
      () => rawFile({ x: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /I64 is not supported/,
    ],
    ['an unknown dtype', () => rawFile({ x: { dtype: 'F99', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /unknown dtype/],
    ['a negative dimension', () => rawFile({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /shape must be/],
    [
      'a header length beyond the file',
      () => {
        const b = rawFile({}, new Uint8Array(0));
        b.writeBigUInt64LE(10n ** 12n);
        return b;
      },
      /header length .* does not fit/,
    ],
    ['a header that is not JSON', () => Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{oops')]), /not valid JSON/],
    ['a 3-byte file', () => Buffer.from([1, 2, 3]), /too short/],
  ];
  for (const [what, make, pattern] of bad) {
    it(`refuses a header with ${what}`, async () => {
      const dir = scratchDir('st');
      writeFileSync(join(dir, 'model.safetensors'), make());
      await assert.rejects(
        readSafetensorsHeader(join(dir, 'model.safetensors')),
        (e: unknown) => e instanceof CheckpointError && pattern.test(e.message),
      );
    });
  }

  it('refuses a shard index that points outside the folder or at a missing shard', async () => {
    const dir = scratchDir('st');
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: '../../etc/passwd' } }));
    await assert.rejects(SafetensorsCheckpoint.open(dir), /points outside the checkpoint folder/);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: 'model-00001-of-00002.safetensors' } }));
    await assert.rejects(SafetensorsCheckpoint.open(dir), /shard model-00001-of-00002\.safetensors .* is missing/);
  });

  it('says what to do with a folder without safetensors', async () => {
    await assert.rejects(SafetensorsCheckpoint.open(scratchDir('st')), /neither model\.safetensors nor .*convert them to safetensors/);
  });

  it('reports a file truncated after its header was read', async () => {
    const dir = scratchDir('st');
    await writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'x', shape: [1000], data: new Float32Array(1000) }]);
    const ckpt = await SafetensorsCheckpoint.open(dir);
    const { truncateSync } = await import('node:fs');
    truncateSync(join(dir, 'model.safetensors'), 500);
    await assert.rejects(ckpt.read('x'), /truncated/);
    await ckpt.close();
  });
});

describe('config.json', () => {
  it("fills llava-hf/llava-1.5-7b-hf's sparse config with transformers' defaults", () => {
    const c = llavaConfigFromJson({
      architectures: ['LlavaForConditionalGeneration'],
      ignore_index: -100,
      image_token_index: 32000,
      model_type: 'llava',
      pad_token_id: 32001,
      projector_hidden_act: 'gelu',
      text_config: {
        _name_or_path: 'lmsys/vicuna-7b-v1.5',
        architectures: ['LlamaForCausalLM'],
        max_position_embeddings: 4096,
        model_type: 'llama',
        rms_norm_eps: 1e-5,
        torch_dtype: 'float16',
        vocab_size: 32064,
      },
      tie_word_embeddings: false,
      torch_dtype: 'float16',
      vision_config: {
        hidden_size: 1024,
        image_size: 336,
        intermediate_size: 4096,
        model_type: 'clip_vision_model',
        num_attention_heads: 16,
        num_hidden_layers: 24,
        patch_size: 14,
        projection_dim: 768,
        vocab_size: 32000,
      },
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'default',
      vocab_size: 32064,
    });
    assert.deepEqual(c.vision, {
      hiddenSize: 1024,
      intermediateSize: 4096,
      numLayers: 24,
      numHeads: 16,
      imageSize: 336,
      patchSize: 14,
      numChannels: 3,
      layerNormEps: 1e-5,
      hiddenAct: 'quick_gelu',
    });
    assert.deepEqual(c.text, {
      hiddenSize: 4096,
      intermediateSize: 11008,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 32,
      headDim: 128,
      vocabSize: 32064,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      maxPositionEmbeddings: 4096,
      tieWordEmbeddings: false,
      attentionBias: false,
    });
    assert.deepEqual(c.family, { vision: 'clip', text: 'llama', layout: 'llava' });
    assert.equal(c.imageTokenIndex, 32000);
    assert.equal(c.visionFeatureLayer, -2);
  });

  it('names what it does not support', () => {
    const base = { model_type: 'llava', architectures: ['LlavaForConditionalGeneration'] };
    assert.throws(() => llavaConfigFromJson({ model_type: 'llama' }), /unsupported architecture/);
    assert.throws(() => llavaConfigFromJson({ ...base, text_config: { model_type: 'gemma' } }), /unsupported language model "gemma"/);
    assert.throws(
      () => llavaConfigFromJson({ ...base, vision_config: { model_type: 'pixtral' } }),
      /unsupported vision tower "pixtral": PruMerge Vision knows "clip_vision_model", "siglip_vision_model"/,
    );
    // a SigLIP tower has no CLS token to drop: the "default" strategy would throw away a patch
    assert.throws(
      () => llavaConfigFromJson({ ...base, vision_config: { model_type: 'siglip_vision_model' }, vision_feature_layer: -1 }),
      /vision_feature_select_strategy "default" is not supported with a siglip tower/,
    );
    assert.throws(() => llavaConfigFromJson({ ...base, vision_feature_layer: -1 }), /vision_feature_layer -1 is not supported/);
    assert.throws(() => llavaConfigFromJson({ ...base, vision_feature_layer: [-2, -5] }), /lists of layers/);
    assert.throws(() => llavaConfigFromJson({ ...base, text_config: { rope_scaling: { type: 'linear', factor: 2 } } }), /rope_scaling/);
    assert.throws(
      () => llavaConfigFromJson({ ...base, text_config: { num_attention_heads: 32, num_key_value_heads: 5 } }),
      /not a multiple of num_key_value_heads/,
    );
  });
});
