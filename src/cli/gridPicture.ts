/**
 * The patch grid as text, one character a patch: what PruMerge kept, at a glance in a terminal.
 *   # kept for its CLS attention   + added by PruMerge+'s spatial supplement   . pruned (merged)
 */
export function gridPicture(patches: number, kept: ArrayLike<number>, spatial: ArrayLike<number>): string | undefined {
  const side = Math.round(Math.sqrt(patches));
  if (side * side !== patches) return undefined;
  const cells = new Array<string>(patches).fill('.');
  for (let i = 0; i < kept.length; i++) cells[kept[i]!] = '#';
  for (let i = 0; i < spatial.length; i++) cells[spatial[i]!] = '+';
  const lines: string[] = [];
  for (let r = 0; r < side; r++) lines.push(cells.slice(r * side, (r + 1) * side).join(' '));
  return lines.join('\n');
}
