/** Every tensor a LLaVA checkpoint holds, by hub name: the tower's, the projector's, the text model's, the newline row. */
import type { TensorSpec } from '../checkpoint/tensorSpec';
import { IMAGE_NEWLINE, VISION } from '../checkpoint/weights';
import { projectorTensors } from './layout/projectorGraph';
import { familiesOf, LlavaConfig } from './llavaConfig';

/** Every tensor of the checkpoint a config describes, by hub name, with its shape. */
export function llavaTensors(config: LlavaConfig): TensorSpec[] {
  const { tower, text } = familiesOf(config);
  const specs = [...tower.tensors(config.vision), ...projectorTensors(config), ...text.tensors(config.text)];
  if (config.tiles) specs.push({ name: IMAGE_NEWLINE, shape: [config.text.hiddenSize], init: 'embedding' });
  return specs;
}

/**
 * The tensors a build reads: everything but the vision layers past where the tower's graph stops
 * (and post_layernorm). The tied lm_head is the table.
 */
export function tensorsToRead(config: LlavaConfig): TensorSpec[] {
  const { tower } = familiesOf(config);
  return llavaTensors(config).filter((spec) => !spec.name.startsWith(`${VISION}.`) || tower.reads(spec.name, config));
}
