/** Workspace trust and the model folder: an untrusted workspace's own folder is ignored, and the user is told. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chooseModelFolder, ignoredFolderNotice, modelFolderNamedIn } from '../../../src/extension/models/modelFolderSetting';
import { scratchDir } from '../../helpers/checkpoints';

describe('workspace trust and the model folder', () => {
  it('a trusted workspace: the folder setting wins over the workspace setting, which wins over the user setting', () => {
    assert.deepEqual(chooseModelFolder({ globalValue: '/u', workspaceValue: '/w', workspaceFolderValue: '/f' }, true), {
      folder: '/f',
      ignored: undefined,
    });
    assert.deepEqual(chooseModelFolder({ globalValue: '/u', workspaceValue: '/w' }, true), { folder: '/w', ignored: undefined });
    assert.deepEqual(chooseModelFolder({ globalValue: '/u', workspaceValue: '  ' }, true), { folder: '/u', ignored: undefined });
    assert.deepEqual(chooseModelFolder(undefined, true), { folder: undefined, ignored: undefined });
  });

  it("an untrusted workspace: only the user's own setting applies, and the workspace's folder is named as ignored", () => {
    assert.deepEqual(chooseModelFolder({ globalValue: '/u', workspaceValue: '/w' }, false), { folder: '/u', ignored: '/w' });
    assert.deepEqual(chooseModelFolder({}, false, '/evil'), { folder: undefined, ignored: '/evil' });
    assert.deepEqual(
      chooseModelFolder({ globalValue: '/u' }, false, '/u'),
      { folder: '/u', ignored: undefined },
      'the same folder as the user chose is not news',
    );
  });

  it('says what is ignored, why, and what is used instead', () => {
    assert.equal(
      ignoredFolderNotice({ folder: undefined, ignored: '/evil/model' }),
      'PruMerge Vision ignores the model folder this workspace names (/evil/model) until you trust the workspace: model files are read by native code (onnxruntime). Using the built-in demo model instead.',
    );
    assert.match(ignoredFolderNotice({ folder: '/u/llava', ignored: '/evil' })!, /Using your own model folder \(\/u\/llava\) instead\.$/);
    assert.equal(ignoredFolderNotice({ folder: '/u', ignored: undefined }), undefined);
  });

  it('reads the folder a workspace names from .vscode/settings.json (comments, trailing commas) or a .code-workspace file', async () => {
    const dir = scratchDir('trust');
    const a = join(dir, 'a', '.vscode');
    const b = join(dir, 'b', '.vscode');
    mkdirSync(a, { recursive: true });
    mkdirSync(b, { recursive: true });
    writeFileSync(join(a, 'settings.json'), '{ "editor.tabSize": 2 }');
    writeFileSync(
      join(b, 'settings.json'),
      '{\n  // a model from the repository\n  "prumergeVision.modelFolder": "../models/trojan",\n}\n',
    );
    assert.equal(await modelFolderNamedIn([join(a, 'settings.json'), join(b, 'settings.json')]), '../models/trojan');
    assert.equal(await modelFolderNamedIn([join(a, 'settings.json'), join(dir, 'missing.json')]), undefined);
    const ws = join(dir, 'x.code-workspace');
    writeFileSync(ws, '{ "folders": [], "settings": { "prumergeVision.modelFolder": "/opt/m" } }');
    assert.equal(await modelFolderNamedIn([join(a, 'settings.json')], ws), '/opt/m');
    writeFileSync(ws, 'not json at all {{{');
    assert.equal(await modelFolderNamedIn([], ws), undefined);
  });
});
