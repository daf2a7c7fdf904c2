/** A model folder's tokenizer, as its model.json names the files: the engine's and the host's token counts read the same one. */
import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { messageOf } from '../common/errors';
import { insideFolder, ModelFolderError, ModelManifest } from './modelManifest';

export async function loadTokenizer(dir: string, m: Pick<ModelManifest, 'tokenizer'>): Promise<Tokenizer> {
  const json = async (name: string): Promise<object> => {
    try {
      return JSON.parse(await readFile(insideFolder(dir, name), 'utf8')) as object;
    } catch (e) {
      throw new ModelFolderError(`${name} in ${dir} cannot be read (${messageOf(e)}): rebuild the model`);
    }
  };
  return new Tokenizer(await json(m.tokenizer.file), await json(m.tokenizer.config));
}
