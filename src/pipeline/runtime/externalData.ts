/**
 * The external data an ONNX graph names, checked before onnxruntime opens the graph: each
 * location must be a file inside the model folder that model.json lists (loadManifest has
 * checked those: inside the folder, not linked from outside, of the listed size), and each
 * (offset, length) must lie within it. A model folder from elsewhere could otherwise have
 * onnxruntime read any file it can reach.
 */
import { readFile } from 'node:fs/promises';
import { basename, relative } from 'node:path';
import { onnx } from 'onnx-proto';
import { insideFolder, ManifestFile, ModelFolderError } from '../../format/modelManifest';

/** Every tensor of `graph` and of its nodes' attributes and subgraphs. */
function* tensorsOf(graph: onnx.IGraphProto | null | undefined): Generator<onnx.ITensorProto> {
  if (!graph) return;
  yield* graph.initializer ?? [];
  for (const s of graph.sparseInitializer ?? []) {
    if (s.values) yield s.values;
    if (s.indices) yield s.indices;
  }
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      if (a.t) yield a.t;
      yield* a.tensors ?? [];
      yield* tensorsOf(a.g);
      for (const g of a.graphs ?? []) yield* tensorsOf(g);
    }
  }
}

export async function checkExternalData(graphPath: string, root: string, files: Readonly<Record<string, ManifestFile>>): Promise<void> {
  const graphName = basename(graphPath);
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(await readFile(graphPath));
  } catch (e) {
    throw new ModelFolderError(`${graphName} is not a readable ONNX graph (${(e as Error).message}): rebuild the model`);
  }
  for (const t of tensorsOf(model.graph)) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entry = (key: string): string | undefined => t.externalData?.find((e) => e.key === key)?.value ?? undefined;
    const location = entry('location') ?? '';
    let path: string;
    try {
      path = insideFolder(root, location);
    } catch {
      throw new ModelFolderError(
        `${graphName} keeps tensor ${t.name} in "${location}", outside the model folder: the folder is not one PruMerge Vision built; it was refused`,
      );
    }
    const listed = files[relative(root, path)];
    if (!listed)
      throw new ModelFolderError(
        `${graphName} keeps tensor ${t.name} in ${location}, which is missing from model.json's files: rebuild the model`,
      );
    const size = listed.bytes;
    const offset = Number(entry('offset') ?? 0);
    const length = Number(entry('length') ?? Number.NaN);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw new ModelFolderError(
        `${graphName} says tensor ${t.name} is at bytes ${entry('offset')}+${entry('length')} of ${location}, which has ${size}: the model is damaged; rebuild it`,
      );
    }
  }
}
