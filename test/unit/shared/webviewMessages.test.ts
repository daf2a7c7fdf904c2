/** The host's checks on what webviews send, and on the paths and links they name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeImageDataUrl, isImagePath, isInside, isSafeExternalLink } from '../../../src/extension/imageFiles';
import { isChatRequest, isHeatmapRequest } from '../../../src/shared/webviewMessages';

describe('messages from the chat view', () => {
  it('accepts each well-formed message', () => {
    for (const m of [
      { type: 'ready' },
      { type: 'ask', question: 'What is this?', reduce: 'prumerge', compare: false },
      { type: 'ask', question: 'What is this?', reduce: 'prumerge', compare: true, compareWith: 'cdpruner:32' },
      { type: 'stop' },
      { type: 'newChat' },
      { type: 'pickImage' },
      { type: 'removeImage', key: '/w/a.png' },
      { type: 'dropImage', uri: 'file:///w/a.png' },
      { type: 'pasteImage', dataUrl: 'data:image/png;base64,iVBORw0KGgo=' },
      { type: 'showHeatmap', reduce: 'prumerge+' },
      { type: 'showHeatmap', reduce: 'topk:32', answerId: '6f1c1f4e-5b7a-4c43-9c56-0c2d7e0b1a11' },
      { type: 'copy', text: 'answer' },
      { type: 'openLink', href: 'https://example.com' },
    ]) {
      assert.ok(isChatRequest(m), JSON.stringify(m));
    }
  });

  it('refuses anything else', () => {
    for (const m of [
      null,
      'ask',
      { type: 'eval', code: '1' },
      { type: 'ask', question: 42, reduce: 'prumerge', compare: false },
      { type: 'ask', question: 'q', reduce: 'prumerge' },
      { type: 'ask', question: 'x'.repeat(200_000), reduce: 'prumerge', compare: false },
      { type: 'ask', question: 'q', reduce: 'fastest', compare: false },
      { type: 'ask', question: 'q', reduce: 'topk:0', compare: false },
      { type: 'ask', question: 'q', reduce: 'prumerge', compare: true, compareWith: 'fastest' },
      { type: 'ask', question: 'q', reduce: 'prumerge', compare: true, compareWith: 32 },
      { type: 'showHeatmap', reduce: 'prumerge++' },
      { type: 'showHeatmap', reduce: 'prumerge', answerId: 7 },
      { type: 'showHeatmap', reduce: 'prumerge', answerId: 'x'.repeat(65) },
      { type: 'pasteImage', dataUrl: 'data:text/html;base64,PHNjcmlwdD4=' },
      { type: 'pasteImage', dataUrl: 'data:image/svg+xml;base64,PHN2Zz4=' },
      { type: 'dropImage' },
      { type: 'removeImage' },
      { type: 'removeImage', key: 3 },
    ]) {
      assert.equal(isChatRequest(m), false, JSON.stringify(m)?.slice(0, 80));
    }
    assert.ok(isHeatmapRequest({ type: 'changeMode', reduce: 'none' }));
    assert.equal(isHeatmapRequest({ type: 'changeMode' }), false);
    assert.equal(isHeatmapRequest({ type: 'changeMode', reduce: 'half' }), false);
    // a tab of at most MAX_IMAGES (4)
    for (const index of [0, 3]) assert.ok(isHeatmapRequest({ type: 'showImage', index }));
    for (const index of [-1, 4, 1.5, '1', undefined]) assert.equal(isHeatmapRequest({ type: 'showImage', index }), false, String(index));
  });
});

describe('paths and links a webview names', () => {
  it('knows the image extensions, whatever their case', () => {
    assert.ok(isImagePath('/w/Shot.PNG') && isImagePath('/w/a.jpeg') && isImagePath('/w/d.svg') && isImagePath('/w/t.TIFF'));
    assert.ok(!isImagePath('/w/notes.txt') && !isImagePath('/w/png'));
  });

  it('keeps paths inside the workspace folders, .. and prefixes included', () => {
    assert.ok(isInside('/w/project/img/a.png', ['/w/project']));
    assert.ok(!isInside('/w/project/../secret.png', ['/w/project']));
    assert.ok(!isInside('/w/project-other/a.png', ['/w/project']));
    assert.ok(!isInside('/w/project', ['/w/project']));
    assert.ok(!isInside('/etc/passwd', []));
  });

  it('opens only web links', () => {
    assert.ok(isSafeExternalLink('https://arxiv.org/abs/2403.15388') && isSafeExternalLink('http://localhost:8080/'));
    for (const bad of [
      'javascript:alert(1)',
      'file:///etc/passwd',
      'command:workbench.action.terminal.new',
      'vscode://x',
      'data:text/html,hi',
      'not a url',
    ]) {
      assert.equal(isSafeExternalLink(bad), false, bad);
    }
  });

  it('decodes pasted PNG / JPEG data and nothing else', () => {
    const png = decodeImageDataUrl('data:image/png;base64,iVBORw0KGgo=');
    assert.equal(png.extension, 'png');
    assert.deepEqual([...png.bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.equal(decodeImageDataUrl('data:image/jpeg;base64,/9j/').extension, 'jpg');
    assert.throws(() => decodeImageDataUrl('data:image/svg+xml;base64,PHN2Zz4='), /not a PNG/);
  });
});
