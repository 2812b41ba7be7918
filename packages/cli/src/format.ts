/**
 * Text output for people: aligned tables as docker prints them, short ids, sizes, and errors on
 * one line (code and what failed) with the cause chain for --debug.
 */
import { bytesSize, errorCode } from '@graphdriver/core';

/** Columns padded to their widest cell, two spaces apart, the last one not padded. */
export function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

export function shortId(id: string, full = false): string {
  const hex = id.replace(/^sha(256|512):/, '');
  return full || !/^[0-9a-f]{64,}$/.test(hex) ? hex : hex.slice(0, 12);
}

export function size(bytes: number | undefined): string {
  return bytes === undefined ? '-' : bytesSize(bytes);
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  path?: unknown;
  dest?: unknown;
  cause?: unknown;
  stack?: unknown;
}

/** `CODE: message` for any thrown value. */
export function errorLine(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return oneLine(code === undefined || message.startsWith(`${code}:`) ? message : `${code}: ${message}`);
}

/** Every cause under `err`, one line each with what Node-style errors carry, then the stack. */
export function errorDetails(err: unknown): string[] {
  const lines: string[] = [];
  let cur: unknown = (err as ErrorLike | null)?.cause;
  const seen = new Set<unknown>([err]);
  while (cur !== undefined && cur !== null && !seen.has(cur)) {
    seen.add(cur);
    const e = cur as ErrorLike;
    const facts = ['errno', 'syscall', 'path', 'dest']
      .filter((k) => e[k as keyof ErrorLike] !== undefined)
      .map((k) => `${k}=${JSON.stringify(e[k as keyof ErrorLike])}`);
    const name = cur instanceof Error ? cur.name : typeof cur;
    lines.push(`  caused by ${name}: ${errorLine(cur)}${facts.length > 0 ? ` (${facts.join(', ')})` : ''}`);
    cur = e.cause;
  }
  const stack = (err as ErrorLike | null)?.stack;
  if (typeof stack === 'string') lines.push(...stack.split('\n').slice(1).map((l) => `  ${l.trim()}`));
  return lines;
}

/** An error as JSON for --json: code, message and the causes' codes and messages. */
export function errorJson(err: unknown): { code: string | undefined; message: string; causes: Array<{ code: string | undefined; message: string }> } {
  const causes: Array<{ code: string | undefined; message: string }> = [];
  let cur: unknown = (err as ErrorLike | null)?.cause;
  const seen = new Set<unknown>([err]);
  while (cur !== undefined && cur !== null && !seen.has(cur)) {
    seen.add(cur);
    causes.push({ code: errorCode(cur), message: cur instanceof Error ? cur.message : String(cur) });
    cur = (cur as ErrorLike).cause;
  }
  return { code: errorCode(err), message: err instanceof Error ? err.message : String(err), causes };
}
