/** Reading config.json fields with transformers' defaults, refusing values the graphs cannot take. */
import { CheckpointError } from './safetensors';

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function num(obj: Json, key: string, fallback: number, where: string): number {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new CheckpointError(`config.json: ${where ? `${where}.` : ''}${key} must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function int(obj: Json, key: string, fallback: number, where: string): number {
  const v = num(obj, key, fallback, where);
  if (!Number.isSafeInteger(v))
    throw new CheckpointError(`config.json: ${where ? `${where}.` : ''}${key} must be a whole number, got ${v}`);
  return v;
}

export function intAllowNegative(obj: Json, key: string, fallback: number): number {
  const v = obj[key] ?? fallback;
  if (!Number.isSafeInteger(v))
    throw new CheckpointError(`config.json: ${key} must be a whole number (lists of layers are not supported), got ${JSON.stringify(v)}`);
  return v as number;
}

export function oneOf<T extends string>(obj: Json, key: string, fallback: T, allowed: readonly T[], where: string): T {
  const v = obj[key] ?? fallback;
  if (!allowed.includes(v as T)) {
    throw new CheckpointError(
      `config.json: ${where ? `${where}.` : ''}${key} ${JSON.stringify(v)} is not supported (${allowed.join(', ')})`,
    );
  }
  return v as T;
}
