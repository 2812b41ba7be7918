/**
 * Writing a tar the driver produces (diff, export) to a file or to standard output, with progress,
 * its sha256 (the diff id an image would give it) and entry count. A file is written beside its
 * final name and renamed into place when complete, so a failure or an interrupt leaves no partial
 * tar under that name. A tar is never written to a terminal.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream } from '../digest.js';
import { UsageError } from '../errors.js';
import type { CommandContext } from '../context.js';
import { TarEntryCounter } from '../tar-counter.js';

export interface TarWritten {
  /** The file written, or undefined for standard output. */
  file: string | undefined;
  bytes: number;
  entries: number;
  /** sha256 of the tar: its diff id. */
  digest: string;
}

/** Checks where a tar may go before any work is done. */
export function checkTarDestination(ctx: CommandContext, output: string | undefined): void {
  if (output === undefined || output === '-') {
    if (ctx.json) throw new UsageError('with --json the tar needs a file: -o FILE');
    if (ctx.io.stdout.isTTY === true) throw new UsageError('refusing to write a tar to a terminal: use -o FILE or a pipe');
  }
}

export async function writeTar(ctx: CommandContext, tar: Readable, output: string | undefined, label: string): Promise<TarWritten> {
  const hash = new DigestStream('sha256');
  const counter = new TarEntryCounter();
  const task = ctx.progress.task(label);
  const ticker = setInterval(() => task.update(hash.bytes, counter.entries), 100);
  ticker.unref();
  const signalOpt = ctx.signal === undefined ? {} : { signal: ctx.signal };
  try {
    if (output === undefined || output === '-') {
      await pipeline(tar, hash, counter, ctx.io.stdout as Writable, { ...signalOpt, end: false });
      task.update(hash.bytes, counter.entries);
      task.done();
      return { file: undefined, bytes: hash.bytes, entries: counter.entries, digest: hash.digest! };
    }
    const file = resolve(output);
    const partial = join(dirname(file), `.${basename(file)}.partial-${process.pid}`);
    try {
      await pipeline(tar, hash, counter, createWriteStream(partial, { flags: 'wx', mode: 0o644 }), signalOpt);
      await rename(partial, file);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    task.update(hash.bytes, counter.entries);
    task.done();
    return { file, bytes: hash.bytes, entries: counter.entries, digest: hash.digest! };
  } catch (err) {
    tar.destroy();
    task.done('failed');
    throw err;
  } finally {
    clearInterval(ticker);
    ctx.progress.stop();
  }
}
