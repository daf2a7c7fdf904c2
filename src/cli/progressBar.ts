/** A one-line progress bar on stderr, redrawn in place on a terminal, printed sparsely otherwise. */
export class ProgressBar {
  private lastLine = '';
  private lastPrint = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  update(fraction: number, text: string): void {
    const width = 30;
    const done = Math.max(0, Math.min(width, Math.round(fraction * width)));
    const line = `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${text}`;
    if (line === this.lastLine) return;
    this.lastLine = line;
    if (this.tty) {
      process.stderr.write(`\r${line.padEnd(process.stderr.columns ? process.stderr.columns - 1 : 100)}`);
    } else if (Date.now() - this.lastPrint > 2000 || fraction >= 1) {
      this.lastPrint = Date.now();
      process.stderr.write(`${line}\n`);
    }
  }

  /** Ends the bar's line; later calls do nothing until the next update. */
  done(): void {
    if (this.tty && this.lastLine) process.stderr.write('\n');
    this.lastLine = '';
  }
}
