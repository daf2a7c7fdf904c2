/** What model.json records of a model's families (src/families): the tower, the text model, the layout. */
export type VisionTowerId = 'clip' | 'siglip';
export type TextModelId = 'llama' | 'mistral' | 'qwen2';
export type LayoutId = 'llava' | 'llava_next' | 'llava_onevision';

/** What model.json records of the three choices. */
export interface FamilyIds {
  readonly vision: VisionTowerId;
  readonly text: TextModelId;
  readonly layout: LayoutId;
}

/** How a tower scores patches for PruMerge (docs/prumerge.md): its CLS query's attention, or the attention each patch receives. */
export type PatchScore = 'cls' | 'received';

/** Whether the model was trained on several images in one conversation: LLaVA-OneVision, and LLaVA-Interleave (SigLIP and Qwen2 in the llava layout). */
export function trainedOnSeveralImages(f: FamilyIds | undefined): boolean {
  return f?.layout === 'llava_onevision' || (f?.layout === 'llava' && f.text === 'qwen2');
}
