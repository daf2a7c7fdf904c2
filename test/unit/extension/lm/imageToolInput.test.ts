/** The image tool's input: the schema package.json declares, the checks, and which files need the user's confirmation. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkToolInput, ImageToolError, locateImage } from '../../../../src/extension/lm/imageToolInput';

const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8'));
const WORKSPACE = '/home/me/project';

describe('the image tool', () => {
  it('declares the input it checks: a path and a question, both required, nothing else', () => {
    const tool = manifest.contributes.languageModelTools.find((t: { name: string }) => t.name === 'prumergeVision_askAboutImage');
    assert.ok(tool, 'declared in package.json');
    assert.deepEqual(Object.keys(tool.inputSchema.properties).sort(), ['path', 'question']);
    assert.deepEqual([...tool.inputSchema.required].sort(), ['path', 'question']);
    assert.equal(tool.inputSchema.additionalProperties, false);
    assert.deepEqual(checkToolInput({ path: ' shots/a.png ', question: ' What is it? ' }), {
      path: 'shots/a.png',
      question: 'What is it?',
    });
  });

  it('refuses input the schema does not allow, in one line naming the field', () => {
    const refused = (input: unknown, pattern: RegExp): void =>
      assert.throws(
        () => checkToolInput(input),
        (e: unknown) => e instanceof ImageToolError && pattern.test(e.message) && !e.message.includes('\n'),
      );
    refused(null, /takes \{ path, question \}/);
    refused('a.png', /takes \{ path, question \}/);
    refused({ question: 'Hi' }, /^path must name an image file/);
    refused({ path: '  ', question: 'Hi' }, /^path must name an image file/);
    refused({ path: 'a.png' }, /^question must say what to ask/);
    refused({ path: 'a.png', question: 3 }, /^question must say what to ask/);
  });

  it('reads a workspace image without asking, and asks before one outside every folder', () => {
    assert.deepEqual(locateImage({ path: 'docs/diagram.png', question: 'q' }, [WORKSPACE]), {
      file: join(WORKSPACE, 'docs', 'diagram.png'),
      outside: false,
    });
    assert.deepEqual(locateImage({ path: `${WORKSPACE}/a.svg`, question: 'q' }, [WORKSPACE]), {
      file: `${WORKSPACE}/a.svg`,
      outside: false,
    });
    assert.equal(locateImage({ path: '/etc/shot.png', question: 'q' }, [WORKSPACE]).outside, true);
    assert.equal(locateImage({ path: '../elsewhere/shot.png', question: 'q' }, [WORKSPACE]).outside, true);
    assert.equal(locateImage({ path: '/tmp/shot.png', question: 'q' }, []).outside, true);
  });

  it('refuses a file that is not an image, and a relative path with no folder open', () => {
    assert.throws(() => locateImage({ path: 'notes.txt', question: 'q' }, [WORKSPACE]), /notes\.txt is not an image file/);
    assert.throws(() => locateImage({ path: 'a.png', question: 'q' }, []), /a\.png is relative, and no folder is open/);
  });
});
