/**
 * What an image is once its manifests are read, whatever the format it came in: its config (id,
 * diff ids, platform), its tags, and its layers bottom first, each with the blob to read, the
 * digests that blob must have and the chain id it is stored under. The format readers (docker.ts,
 * oci.ts) build these; import.ts carries them out.
 */
import { chainIds, digestOf, layerIdOf, parseDigest } from '../digest.js';
import { DigestMismatchError, InvalidImageError } from '../errors.js';
import type { ImageSource } from './source.js';

/** Manifests, indexes and configs larger than this are refused (containers/image's limit for configs). */
export const MAX_JSON_BYTES = 8 << 20;

export interface LayerPlan {
  /** Position in the image, 0 = bottom. */
  index: number;
  diffId: string;
  chainId: string;
  /** The layer id it is stored under: the chain id's hex. */
  id: string;
  parent: string | undefined;
  /** The blob's name in the source. */
  blob: string;
  /** Digest and size of the blob as the manifest gives them (OCI; docker-save's content-addressed names). */
  blobDigest?: string;
  blobSize?: number;
  mediaType?: string;
}

export interface ImagePlan {
  /** `sha256:<hex>` of the config. */
  id: string;
  tags: string[];
  format: 'docker-archive' | 'oci-archive' | 'oci-layout';
  os: string | undefined;
  architecture: string | undefined;
  created: string | undefined;
  layers: LayerPlan[];
}

export interface ImageConfigSummary {
  diffIds: string[];
  os: string | undefined;
  architecture: string | undefined;
  created: string | undefined;
}

export function parseJson(source: ImageSource, name: string, bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidImageError(source.location, `${name} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The parts of an image config import needs, checked. */
export function readConfig(source: ImageSource, name: string, bytes: Buffer): ImageConfigSummary {
  const cfg = parseJson(source, name, bytes);
  if (!isRecord(cfg)) throw new InvalidImageError(source.location, `${name} is not an image config (not a JSON object)`);
  const rootfs = cfg.rootfs;
  if (!isRecord(rootfs) || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw new InvalidImageError(source.location, `${name} is not an image config: no rootfs of type "layers" with diff_ids`);
  }
  const diffIds = rootfs.diff_ids.map((d, i) => {
    const parsed = parseDigest(d);
    if (parsed === undefined || parsed.algorithm !== 'sha256') {
      throw new InvalidImageError(source.location, `${name}: diff_ids[${i}] is not a sha256 digest: ${JSON.stringify(d)}`);
    }
    return d as string;
  });
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return { diffIds, os: str(cfg.os), architecture: str(cfg.architecture), created: str(cfg.created) };
}

/** Reads a small file whose digest is known (manifest, config) and checks it. */
export async function readVerified(source: ImageSource, name: string, what: string, digest: string | undefined, size: number | undefined): Promise<Buffer> {
  const st = await source.stat(name);
  if (st === undefined) throw new InvalidImageError(source.location, `the ${what}${digest === undefined ? '' : ` ${digest}`} is missing (${name})`);
  if (size !== undefined && st.size !== size) {
    throw new DigestMismatchError(`${source.location}: ${what} ${digest ?? name} size`, `${size} bytes`, `${st.size} bytes`);
  }
  const bytes = await source.readAll(name, MAX_JSON_BYTES);
  const d = parseDigest(digest);
  if (d !== undefined) {
    const got = digestOf(bytes, d.algorithm);
    if (got !== digest) throw new DigestMismatchError(`${source.location}: ${what} ${name}`, digest!, got);
  }
  return bytes;
}

export interface BlobRef {
  name: string;
  digest?: string;
  size?: number;
  mediaType?: string;
}

/** Layer plans for `blobs` under the config's diff ids; their counts must agree. */
export function planLayers(source: ImageSource, diffIds: string[], blobs: BlobRef[]): LayerPlan[] {
  if (diffIds.length !== blobs.length) {
    throw new InvalidImageError(source.location, `the manifest lists ${blobs.length} layers but the config has ${diffIds.length} diff ids`);
  }
  const chains = chainIds(diffIds);
  return blobs.map((b, index) => {
    const chainId = chains[index]!;
    const plan: LayerPlan = {
      index,
      diffId: diffIds[index]!,
      chainId,
      id: layerIdOf(chainId),
      parent: index === 0 ? undefined : layerIdOf(chains[index - 1]!),
      blob: b.name,
    };
    if (b.digest !== undefined) plan.blobDigest = b.digest;
    if (b.size !== undefined) plan.blobSize = b.size;
    if (b.mediaType !== undefined) plan.mediaType = b.mediaType;
    return plan;
  });
}

/** Checks that every layer blob of `plans` is there before anything is stored. */
export async function checkBlobsPresent(source: ImageSource, plans: ImagePlan[]): Promise<void> {
  for (const img of plans) {
    for (const l of img.layers) {
      const st = await source.stat(l.blob);
      if (st === undefined) {
        throw new InvalidImageError(source.location, `layer ${l.index + 1}/${img.layers.length} is missing: no ${l.blob}${l.blobDigest === undefined ? '' : ` (blob ${l.blobDigest})`}`);
      }
      if (l.blobSize !== undefined && st.size !== l.blobSize) {
        throw new DigestMismatchError(`${source.location}: layer ${l.index + 1}/${img.layers.length} blob ${l.blobDigest ?? l.blob} size`, `${l.blobSize} bytes`, `${st.size} bytes`);
      }
    }
  }
}
