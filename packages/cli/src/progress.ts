/**
 * Progress for the long commands (import, apply, diff, export): one bar per layer with bytes and
 * tar entries, drawn with cli-progress on standard error when it is a terminal, and nothing at all
 * when it is not (piped, redirected, --json): a log file gets no carriage returns.
 */
import { MultiBar, type Options, type Params } from 'cli-progress';
import { bytesSize } from '@graphdriver/core';

export interface ProgressTask {
  /** `bytes` read so far, tar `entries` seen and, for compressed input, the bytes it `unpacked` to. */
  update(bytes: number, entries: number, unpacked?: number): void;
  /** The final figures; the bar stays on screen with `note` after it. */
  done(note?: string): void;
}

export interface Progress {
  /** Whether anything is drawn (a terminal). */
  readonly terminal: boolean;
  /** A bar named `name`; `total` bytes when known (else a counter without a bar). */
  task(name: string, total?: number): ProgressTask;
  /** A note above the bars (on a terminal only, like the bars). */
  log(line: string): void;
  /** Takes the bars down; call before printing anything else. */
  stop(): void;
}

interface Payload {
  name: string;
  entries: number;
  unpacked: number | undefined;
  note: string;
  known: boolean;
}

const BAR_WIDTH = 20;

function render(_opts: Options, params: Params, payload: Payload): string {
  const unpacked = payload.unpacked === undefined ? '' : ` -> ${bytesSize(payload.unpacked)}`;
  const entries = `${unpacked}  ${payload.entries.toLocaleString('en-US')} ${payload.entries === 1 ? 'entry' : 'entries'}`;
  const name = payload.name.padEnd(18).slice(0, 18);
  if (!payload.known) return `${name} ${bytesSize(params.value).padStart(9)}${entries}${payload.note}`;
  const fraction = params.total > 0 ? Math.min(1, params.value / params.total) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `${name} ${bar} ${pct} ${bytesSize(params.value)}/${bytesSize(params.total)}${entries}${payload.note}`;
}

class TerminalProgress implements Progress {
  readonly terminal = true;
  readonly #bars: MultiBar;
  readonly #stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream) {
    this.#stream = stream;
    this.#bars = new MultiBar({
      stream: stream as NodeJS.WritableStream & { isTTY: boolean },
      format: render,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      fps: 10,
      autopadding: false,
    });
  }

  task(name: string, total?: number): ProgressTask {
    const known = total !== undefined && total > 0;
    const payload: Payload = { name, entries: 0, unpacked: undefined, note: '', known };
    const bar = this.#bars.create(known ? total : 1, 0, payload);
    let last = 0;
    return {
      update: (bytes, entries, unpacked) => {
        last = bytes;
        payload.entries = entries;
        payload.unpacked = unpacked;
        bar.update(bytes, { ...payload });
      },
      done: (note) => {
        if (known) bar.setTotal(Math.max(total, last));
        bar.update(known ? Math.max(total, last) : last, { ...payload, note: note === undefined ? '' : `  ${note}` });
        bar.stop();
      },
    };
  }

  log(line: string): void {
    // above the bars while they are drawn; plainly before the first and after the last
    if (this.#bars.isActive) this.#bars.log(`${line}\n`);
    else this.#stream.write(`${line}\n`);
  }

  stop(): void {
    this.#bars.stop();
  }
}

class SilentProgress implements Progress {
  readonly terminal = false;
  task(): ProgressTask {
    return { update: () => undefined, done: () => undefined };
  }
  log(): void {}
  stop(): void {}
}

/** Bars and their notes on `stream` when it is a terminal and `enabled`, else nothing at all. */
export function createProgress(stream: NodeJS.WritableStream & { isTTY?: boolean }, enabled: boolean): Progress {
  return enabled && stream.isTTY === true ? new TerminalProgress(stream) : new SilentProgress();
}
