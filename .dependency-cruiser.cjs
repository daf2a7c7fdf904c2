/**
 * The layers of src/ and what each may import (docs/architecture.md, "Layers"). `npm run
 * check:layers` (part of `npm test`) fails on an import cycle or on an import across these lines.
 * Lowest first:
 *
 *   common, shared        Node helpers; what the host and the webviews share
 *   checkpoint            safetensors, hub tensor names, config.json fields, hub downloads
 *   onnx                  the ONNX writer and its ops, quantisation
 *   format                a model folder: model.json and its one reader, graph I/O names, preprocessing, visual layout
 *   families              vision towers, text models, layouts: config, tensors, graphs
 *   pipeline              image -> tower -> reduction -> projector -> language model, at run time
 *   builder               a checkpoint -> a model folder (and the int8 tower's check, which runs the pipeline)
 *   worker                the shared process; its client for the host
 *   cli, extension        the two front ends
 */
const layer = (name, mayImport, comment) => ({
  name: `layer-${name}`,
  comment,
  severity: 'error',
  from: { path: `^src/${name}/` },
  to: { path: '^src/', pathNot: [`^src/${name}/`, ...mayImport.map((l) => (l.includes('.') ? `^src/${l}` : `^src/${l}/`))] },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'an import cycle', from: { path: '^src/' }, to: { circular: true } },
    layer('common', [], 'common is the bottom layer'),
    layer('shared', ['common/errors\\.ts$'], 'src/shared runs in the webviews too'),
    layer('checkpoint', ['common'], 'checkpoints are read without the graphs, the model format or the families'),
    layer('onnx', ['common', 'checkpoint'], 'the graph writer knows no model family'),
    layer('format', ['common', 'shared'], 'the model format is read by the pipeline and the extension: nothing above it'),
    layer('families', ['common', 'checkpoint', 'onnx', 'format'], 'families build graphs; they do not run them'),
    layer(
      'pipeline',
      ['common', 'shared', 'format'],
      'the pipeline runs a model folder: it needs no builder, no graph writer, no families',
    ),
    layer('builder', ['common', 'shared', 'checkpoint', 'onnx', 'format', 'families', 'pipeline'], 'the builder orchestrates'),
    layer('worker', ['common', 'shared', 'checkpoint', 'format', 'pipeline', 'builder'], 'the worker hosts the pipeline and the builder'),
    layer('webview', ['shared'], 'webviews share only src/shared'),
    {
      name: 'extension-layers',
      comment: 'the extension host talks to the worker through its client; it loads no model code',
      severity: 'error',
      from: { path: '^src/extension/' },
      to: {
        path: '^src/',
        pathNot: [
          '^src/(extension|common|shared|format|pipeline)/',
          '^src/worker/(engineClient|protocol|sharedWorker)\\.ts$',
          '^src/types/',
        ],
      },
    },
    {
      name: 'extension-no-pipeline-values',
      comment: 'types from the pipeline are fine; its code (and onnxruntime) stays out of the extension host',
      severity: 'error',
      from: { path: '^src/(extension|worker/(engineClient|protocol|sharedWorker))' },
      to: { path: '^src/pipeline/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
