/** Tensors a config implies, by hub name, and how synthetic values are drawn for each. */

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** How synthetic values are drawn: layer-norm gains near 1, everything else near 0. */
  readonly init: 'weight' | 'bias' | 'norm' | 'embedding';
}

export function linearSpecs(prefix: string, inFeatures: number, outFeatures: number, bias: boolean): TensorSpec[] {
  const specs: TensorSpec[] = [{ name: `${prefix}.weight`, shape: [outFeatures, inFeatures], init: 'weight' }];
  if (bias) specs.push({ name: `${prefix}.bias`, shape: [outFeatures], init: 'bias' });
  return specs;
}

export function layerNormSpecs(prefix: string, width: number): TensorSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [width], init: 'norm' },
    { name: `${prefix}.bias`, shape: [width], init: 'bias' },
  ];
}
