/**
 * Content digests as OCI and Docker write them (`sha256:<64 hex>`, also sha512): parsing, a
 * pass-through stream that hashes and counts what flows through it, and the chain ids that name
 * a stack of layers (moby's layer.CreateChainID): the chain id of the bottom layer is its diff id,
 * of every other `sha256(parentChainId + " " + diffId)`. Layers are stored under the hex of their
 * chain id, so a layer shared by two images (same content on the same parents) is stored once.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** `sha256:<hex>` (or sha512) split and checked; undefined for anything else. */
export function parseDigest(value: unknown): Digest | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(sha256|sha512):([0-9a-f]+)$/.exec(value);
  if (m === null) return undefined;
  const algorithm = m[1] as DigestAlgorithm;
  const hex = m[2]!;
  return hex.length === HEX_LENGTH[algorithm] ? { algorithm, hex } : undefined;
}

export function formatDigest(d: Digest): string {
  return `${d.algorithm}:${d.hex}`;
}

export function digestOf(data: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Chain ids of a stack of diff ids, bottom first. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const parent = out[out.length - 1];
    out.push(parent === undefined ? diffId : digestOf(Buffer.from(`${parent} ${diffId}`)));
  }
  return out;
}

/** The layer id a chain id is stored under: its hex (layer ids cannot hold ':'). */
export function layerIdOf(chainId: string): string {
  const d = parseDigest(chainId);
  if (d === undefined) throw new TypeError(`not a digest: ${chainId}`);
  return d.hex;
}

/** Passes bytes through unchanged while hashing and counting them. */
export class DigestStream extends Transform {
  readonly algorithm: DigestAlgorithm;
  #hash: Hash;
  #bytes = 0;
  #digest: string | undefined;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    super({ highWaterMark: 1 << 20 });
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The digest of everything that went through; only once the input has ended. */
  get digest(): string | undefined {
    return this.#digest;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.#digest = `${this.algorithm}:${this.#hash.digest('hex')}`;
    cb();
  }
}
