/**
 * projector.onnx: LlavaMultiModalProjector on the reduced visual tokens.
 *
 *   image_features (M, C_vision) -> linear_1 -> gelu -> linear_2 -> image_embeds (M, C_text)
 *
 * M is dynamic: it is whatever PruMerge kept (plus its remainder token), or all N patches.
 */
import { PROJECTOR_IO } from '../../format/graphNames';
import type { LlavaConfig } from '../family';
import { DataType } from '../../onnx/onnxGraph';
import { Ops } from '../../onnx/ops';
import { linearSpecs, TensorSpec } from '../../checkpoint/tensorSpec';
import { PROJECTOR } from '../../checkpoint/weights';

export async function makeProjectorGraph(ops: Ops, config: LlavaConfig): Promise<void> {
  const { g } = ops;
  const cv = config.vision.hiddenSize;
  const ct = config.text.hiddenSize;
  const x = ops.fromFloat32('/projector/input', g.input(PROJECTOR_IO.features, DataType.FLOAT, ['num_visual_tokens', cv]));
  const h = await ops.makeLinear('/projector/linear_1', `${PROJECTOR}.linear_1`, x, cv, ct, { bias: true });
  const a = ops.makeActivation('/projector/act', h, config.projectorHiddenAct);
  const y = await ops.makeLinear('/projector/linear_2', `${PROJECTOR}.linear_2`, a, ct, ct, { bias: true });
  ops.output('/projector/output', y, PROJECTOR_IO.embeds, ['num_visual_tokens', ct]);
}

/** The projector's tensors, by hub name. */
export function projectorTensors(config: LlavaConfig): TensorSpec[] {
  const cv = config.vision.hiddenSize;
  const ct = config.text.hiddenSize;
  return [...linearSpecs(`${PROJECTOR}.linear_1`, cv, ct, true), ...linearSpecs(`${PROJECTOR}.linear_2`, ct, ct, true)];
}
