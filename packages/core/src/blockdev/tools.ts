/**
 * Running the filesystem tools blockdev/ relies on (mkfs.ext4, mkfs.xfs, resize2fs, xfs_growfs,
 * blkid) as child processes, with errors that say which tool, which package provides it, and what
 * it printed.
 */
import { execFile } from 'node:child_process';
import { debuglog } from 'node:util';
import { OperationFailedError, PrerequisitesError, errorCode } from '../errors.js';

const debug = debuglog('graphdriver:core');

/** The Debian/Fedora package that ships each tool, for the "not installed" message. */
const PACKAGE_OF: Record<string, string> = {
  'mkfs.ext4': 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  xfs_growfs: 'xfsprogs',
  blkid: 'util-linux',
};

export interface ToolResult {
  stdout: string;
  stderr: string;
}

/** A tool that ran and failed: its exit status and what it wrote to stderr. */
export class ToolError extends Error {
  readonly code = 'ERR_GRAPHDRIVER_TOOL_FAILED';
  constructor(
    readonly tool: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stderr: string,
  ) {
    const status = exitCode === null ? `killed by ${signal ?? 'a signal'}` : `exit status ${exitCode}`;
    const said = stderr.trim().split('\n').slice(-3).join(' / ');
    super(`${tool} ${args.join(' ')}: ${status}${said === '' ? '' : `: ${said}`}`);
  }
}

/**
 * Run `tool` with `args`; resolves with its output. A missing tool is a PrerequisitesError, a
 * failing one an OperationFailedError (what = what we were doing) with a ToolError as cause.
 */
export function runTool(
  tool: string,
  args: readonly string[],
  what: string,
  signal?: AbortSignal,
  /** Exit statuses that mean success besides 0 (e2fsck: 1 = errors corrected). */
  okExitCodes: readonly number[] = [],
): Promise<ToolResult> {
  debug('run %s %s', tool, args.join(' '));
  return new Promise((resolve, reject) => {
    execFile(tool, args, { signal, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err === null) {
        resolve({ stdout, stderr });
        return;
      }
      if (err.name === 'AbortError') {
        reject(err);
        return;
      }
      if (errorCode(err) === 'ENOENT') {
        const pkg = PACKAGE_OF[tool];
        reject(new PrerequisitesError(`${what}: ${tool} is not installed${pkg === undefined ? '' : ` (package ${pkg})`}`, { cause: err }));
        return;
      }
      const exitCode = typeof err.code === 'number' ? err.code : null;
      if (exitCode !== null && okExitCodes.includes(exitCode)) {
        resolve({ stdout, stderr });
        return;
      }
      reject(new OperationFailedError(what, undefined, new ToolError(tool, args, exitCode, err.signal ?? null, stderr)));
    });
  });
}
