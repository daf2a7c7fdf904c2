/** model.json's one reader on hand-written manifests: its checks, and older folders' layouts upgraded on read. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MANIFEST_FORMAT, MANIFEST_VERSION, ModelFolderError, parseManifest } from '../../../src/format/modelManifest';
import { offeredDetails } from '../../../src/format/visualLayout';

const file = { bytes: 1, sha256: '' };
/** The smallest manifest the reader accepts, with `extra` fields. */
function manifestText(extra: Record<string, unknown>): string {
  return JSON.stringify({
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    name: 'hand-written',
    vision: { graph: 'vision.onnx' },
    projector: { graph: 'projector.onnx' },
    decoder: { graph: 'decoder.onnx' },
    embeddings: { file: 'embed_tokens.bin' },
    tokenizer: { file: 'tokenizer.json', config: 'tokenizer_config.json' },
    files: Object.fromEntries(
      ['vision.onnx', 'projector.onnx', 'decoder.onnx', 'embed_tokens.bin', 'tokenizer.json', 'tokenizer_config.json'].map((f) => [
        f,
        file,
      ]),
    ),
    ...extra,
  });
}

describe('model.json: the layout block', () => {
  it('reads a folder built before the block as one grid when it had no tiles (LLaVA-1.5)', () => {
    const m = parseManifest(manifestText({}), '/models/old-llava');
    assert.deepEqual(m.layout, { kind: 'grid' });
    assert.deepEqual(offeredDetails(m.layout), { medium: false, low: false });
  });

  it("reads an older LLaVA-NeXT folder's `next` as tiles without the padded crop", () => {
    const next = { gridPinpoints: [[336, 672]], imageNewline: [0.5, -0.5] };
    const m = parseManifest(manifestText({ next }), '/models/old-next');
    assert.deepEqual(m.layout, { kind: 'tiles', gridPinpoints: [[336, 672]], imageNewline: [0.5, -0.5], paddedCrop: false });
    assert.equal('next' in m, false);
    assert.deepEqual(offeredDetails(m.layout), { medium: true, low: false });
  });

  it('reads an older OneVision folder (anyres_max_N) as tiles that also offer the padded crop', () => {
    const next = { gridPinpoints: [[384, 384]], imageNewline: [1], maxTiles: 9 };
    const m = parseManifest(manifestText({ next }), '/models/old-onevision');
    assert.deepEqual(m.layout, { kind: 'tiles', gridPinpoints: [[384, 384]], imageNewline: [1], maxTiles: 9, paddedCrop: true });
    assert.deepEqual(offeredDetails(m.layout), { medium: true, low: true });
  });

  it('keeps a layout block as written', () => {
    const layout = { kind: 'tiles', gridPinpoints: [[60, 120]], imageNewline: [0], maxTiles: 2, paddedCrop: false };
    assert.deepEqual(parseManifest(manifestText({ layout }), '/m').layout, layout);
  });

  it('refuses text that is not a manifest of this version, naming the folder', () => {
    assert.throws(
      () => parseManifest('{', '/models/x'),
      (e: unknown) => e instanceof ModelFolderError && /\/models\/x.*not valid JSON/.test(e.message),
    );
    assert.throws(
      () => parseManifest(manifestText({ version: MANIFEST_VERSION + 1 }), '/models/y'),
      (e: unknown) => e instanceof ModelFolderError && /different version of PruMerge Vision/.test(e.message),
    );
    assert.throws(
      () => parseManifest(manifestText({ files: {} }), '/models/z'),
      (e: unknown) => e instanceof ModelFolderError && /incomplete: it does not list vision\.onnx/.test(e.message),
    );
  });
});
