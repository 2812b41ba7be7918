/**
 * Running the few tools the DeviceSet needs that core's blockdev/ does not wrap (tune2fs,
 * xfs_growfs with our own messages): a missing tool is a PrerequisitesError naming its
 * package, a failing one an OperationFailedError carrying what it printed.
 */
import { execFile } from 'node:child_process';
import { debuglog } from 'node:util';
import { errorCode, OperationFailedError, PrerequisitesError } from '@graphdriver/core';

const debug = debuglog('graphdriver:devmapper');

const PACKAGE_OF: Record<string, string> = {
  tune2fs: 'e2fsprogs',
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  xfs_growfs: 'xfsprogs',
  resize2fs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
};

export async function runTool(tool: string, args: readonly string[], what: string, signal?: AbortSignal): Promise<string> {
  debug('run %s %s', tool, args.join(' '));
  return new Promise((resolve, reject) => {
    execFile(tool, args, { signal, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err === null) {
        resolve(stdout);
        return;
      }
      if (errorCode(err) === 'ENOENT') {
        const pkg = PACKAGE_OF[tool];
        reject(new PrerequisitesError(`${what}: ${tool} is not installed${pkg === undefined ? '' : ` (package ${pkg})`}`, { cause: err }));
        return;
      }
      const said = `${stderr}${stdout}`.trim().split('\n').slice(-3).join(' / ');
      reject(new OperationFailedError(what, undefined, new Error(`${tool} ${args.join(' ')}: ${err.message.split('\n')[0]}${said === '' ? '' : `: ${said}`}`, { cause: err })));
    });
  });
}
