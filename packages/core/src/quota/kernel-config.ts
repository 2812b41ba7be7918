/**
 * The running kernel's build configuration (/proc/config.gz, else /boot/config-<release>), read
 * only to explain why something the kernel could do is missing ("CONFIG_XFS_QUOTA is not set"),
 * never to decide: the probe itself decides.
 */
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';

export interface KernelConfig {
  /** Where it was read from. */
  source: string;
  /** `y`, `m`, a value, or undefined when the option is not set. */
  get(option: string): string | undefined;
}

let cached: Promise<KernelConfig | undefined> | undefined;

async function load(): Promise<KernelConfig | undefined> {
  const candidates: Array<[string, (b: Buffer) => string]> = [
    ['/proc/config.gz', (b) => gunzipSync(b).toString('utf8')],
    [`/boot/config-${release()}`, (b) => b.toString('utf8')],
  ];
  for (const [source, decode] of candidates) {
    let text: string;
    try {
      text = decode(await readFile(source));
    } catch {
      continue;
    }
    const values = new Map<string, string>();
    for (const line of text.split('\n')) {
      const m = /^(CONFIG_[A-Z0-9_]+)=(.*)$/.exec(line);
      if (m !== null) values.set(m[1] as string, m[2] as string);
    }
    return { source, get: (option) => values.get(option) };
  }
  return undefined;
}

/** The running kernel's configuration, or undefined when the kernel does not publish it. */
export function kernelConfig(): Promise<KernelConfig | undefined> {
  cached ??= load();
  return cached;
}
