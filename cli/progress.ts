/**
 * A progress bar on stderr for long work: redrawn in place on a terminal (at most 5 times a
 * second), one line per tenth of the way otherwise (logs, CI), and a last line when done.
 */
export class Progress {
  private lastDraw = 0;
  private lastTenth = -1;
  private readonly tty: boolean;

  constructor(private readonly label: string, private readonly total: number, private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY);
  }

  update(done: number, detail: string, force = false): void {
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    if (this.tty) {
      if (!force && Date.now() - this.lastDraw < 200) return;
      this.lastDraw = Date.now();
      const width = 30;
      const fill = Math.round(frac * width);
      this.out.write(`\r\x1b[K${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct} ${detail}`);
    } else {
      const tenth = Math.floor(frac * 10);
      if (tenth === this.lastTenth && !force) return;
      this.lastTenth = tenth;
      this.out.write(`${this.label} ${pct} ${detail}\n`);
    }
  }

  done(detail: string): void {
    this.update(this.total, detail, true);
    if (this.tty) this.out.write('\n');
  }
}
