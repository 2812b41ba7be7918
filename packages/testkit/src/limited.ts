/**
 * Running a command as a container's processes run: without CAP_SYS_RESOURCE. The kernel lets that
 * capability exceed quota limits (ext4's VFS quota honours it), and root has it, so a test that
 * wants to see EDQUOT must drop it from the command that writes.
 */
import { execFile } from 'node:child_process';

export interface LimitedResult {
  /** The command's exit code (0 when it succeeded). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` through setpriv with CAP_SYS_RESOURCE removed from its bounding set. Never rejects on a non-zero exit. */
export function runWithoutSysResource(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<LimitedResult> {
  return new Promise((resolve, reject) => {
    execFile('setpriv', ['--bounding-set=-sys_resource', '--', ...argv], { env: { ...env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') {
        reject(err);
        return;
      }
      resolve({ code: err ? ((err as { code: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * Writes `mib` MiB of zeros to `path` (fsync'd) without CAP_SYS_RESOURCE. Resolves with the bytes
 * written and, when the kernel refused, its strerror text (`Disk quota exceeded`, `No space left on device`).
 */
export async function writeZerosWithoutSysResource(path: string, mib: number): Promise<{ written: number; error: string | undefined }> {
  const r = await runWithoutSysResource(['dd', 'if=/dev/zero', `of=${path}`, 'bs=1M', `count=${mib}`, 'conv=fsync']);
  const written = Number(/^(\d+) bytes/m.exec(r.stderr)?.[1] ?? NaN);
  const error = r.code === 0 ? undefined : (/error writing '[^']*': (.*)/.exec(r.stderr)?.[1] ?? (/fsync failed for '[^']*': (.*)/.exec(r.stderr)?.[1] ?? r.stderr.trim()));
  return { written, error };
}
