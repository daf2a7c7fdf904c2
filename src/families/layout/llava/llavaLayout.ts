/** LLaVA-1.5's layout (LlavaForConditionalGeneration): one image, one grid of patches. */
import type { LayoutFamily } from '../../family';

export const LLAVA: LayoutFamily = {
  id: 'llava',
  modelType: 'llava',
  architecture: 'LlavaForConditionalGeneration',
  example: 'llava-hf/llava-1.5-7b-hf',
  anyres: () => undefined,
  paddedCrop: false,
};
