/** What the user reads about a file: named as they know it, and the warning for a tiny image. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inUserTerms } from '../../../src/common/userPaths';
import { lowResolutionNote } from '../../../src/shared/imageNotes';
import { pixelScale } from '../../../src/shared/imageGeometry';

const DAMAGED = ' is damaged or truncated: re-export or re-download it';

describe('messages name files as the user knows them', () => {
  it('relative to the one workspace folder', () => {
    assert.equal(inUserTerms(`/home/ann/site/img/corrupt.png${DAMAGED}`, { folders: ['/home/ann/site'] }), `img/corrupt.png${DAMAGED}`);
  });

  it("with several folders, from the folder's name, the innermost folder first", () => {
    const places = { folders: ['/w/app', '/w/app/docs', '/w/other'], prefixFolderName: true };
    assert.equal(inUserTerms('/w/app/docs/a.png and /w/other/b.png', places), 'docs/a.png and other/b.png');
  });

  it('a pasted screenshot as the pasted image; a file elsewhere by its whole path', () => {
    const places = { folders: ['/w'], pastedDir: '/store/ws1/pasted' };
    assert.equal(inUserTerms(`/store/ws1/pasted/pasted-2026-12-03T10-00-00-000Z.png${DAMAGED}`, places), `the pasted image${DAMAGED}`);
    assert.equal(inUserTerms('/elsewhere/x.png does not exist: check the path', places), '/elsewhere/x.png does not exist: check the path');
  });

  it('a folder that is a prefix of another name is not cut out of it', () => {
    assert.equal(inUserTerms('/w/app2/x.png', { folders: ['/w/app'] }), '/w/app2/x.png');
  });

  it('Windows paths', () => {
    assert.equal(inUserTerms(`C:\\Users\\ann\\site\\shot.png${DAMAGED}`, { folders: ['C:\\Users\\ann\\site'] }), `shot.png${DAMAGED}`);
  });
});

describe('an image far below the model resolution', () => {
  it('is said so, with the factor it is enlarged by (336 / 4 = 84)', () => {
    const note = lowResolutionNote('icon.png', { width: 4, height: 4 }, 336);
    assert.equal(
      note,
      'icon.png is 4 x 4 pixels, far below the 336 x 336 the model reads: it is enlarged about 84x, so the answer will mean little. Use a larger image if you have one.',
    );
  });

  it('from under a quarter of the side on: 83 px is, 84 px is not (at 336)', () => {
    assert.match(lowResolutionNote('a.png', { width: 83, height: 20 }, 336) ?? '', /83 x 20 pixels.*about 4x/);
    assert.equal(lowResolutionNote('a.png', { width: 84, height: 20 }, 336), undefined);
    assert.equal(lowResolutionNote('a.png', { width: 1024, height: 768 }, 384), undefined);
  });

  it('is drawn larger by a whole factor: 4 x 4 at least 96 px is 24x; large images stay 1x', () => {
    assert.equal(pixelScale({ width: 4, height: 4 }, 96), 24);
    assert.equal(pixelScale({ width: 10, height: 3 }, 96), 9);
    assert.equal(pixelScale({ width: 96, height: 10 }, 96), 1);
    assert.equal(pixelScale({ width: 0, height: 0 }, 96), 1);
  });
});
