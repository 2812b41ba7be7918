/**
 * OCI image layouts (image-spec's image-layout.md), as a directory (`umoci`, `skopeo copy oci:`)
 * or as a tar of one (`skopeo copy oci-archive:`, `docker save` of docker 25+ also carries one):
 * `index.json` points at manifests (or nested indexes: one manifest per platform), every blob is
 * `blobs/<alg>/<hex>` and checked against its digest and size. Tags are the
 * `org.opencontainers.image.ref.name` annotations. Of a multi-platform index, the manifest for
 * this machine's platform is taken. Docker's schema-2 manifests and manifest lists are read alike.
 */
import { debuglog } from 'node:util';
import { parseDigest } from '../digest.js';
import { InvalidImageError } from '../errors.js';
import { isRecord, parseJson, planLayers, readConfig, readVerified, type BlobRef, type ImagePlan } from './plan.js';
import type { ImageSource } from './source.js';

const debug = debuglog('graphdriver:cli');

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);
const MANIFEST_TYPES = new Set<string>([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
const CONFIG_TYPES = new Set<string>([MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig]);
/** Layer media types whose blobs are tars (compressed or not); anything else (encrypted, artifacts) is refused. */
const LAYER_TYPES = new Set<string>([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
]);

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';
const MAX_INDEX_DEPTH = 4;

export interface Platform {
  os: string;
  architecture: string;
}

const GO_ARCH: Partial<Record<string, string>> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** This machine as OCI names platforms. */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: GO_ARCH[process.arch] ?? process.arch };
}

interface Descriptor {
  mediaType: string | undefined;
  digest: string;
  size: number;
  annotations: Record<string, string>;
  platform: Platform | undefined;
}

function descriptor(source: ImageSource, v: unknown, what: string): Descriptor {
  if (!isRecord(v)) throw new InvalidImageError(source.location, `${what} is not a descriptor`);
  const d = parseDigest(v.digest);
  if (d === undefined) throw new InvalidImageError(source.location, `${what} has no valid digest: ${JSON.stringify(v.digest)}`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw new InvalidImageError(source.location, `${what} has no valid size`);
  }
  const annotations: Record<string, string> = {};
  if (isRecord(v.annotations)) {
    for (const [k, val] of Object.entries(v.annotations)) if (typeof val === 'string') annotations[k] = val;
  }
  const p = v.platform;
  const platform = isRecord(p) && typeof p.os === 'string' && typeof p.architecture === 'string' ? { os: p.os, architecture: p.architecture } : undefined;
  return { mediaType: typeof v.mediaType === 'string' ? v.mediaType : undefined, digest: v.digest as string, size: v.size, annotations, platform };
}

function blobName(digest: string): string {
  const d = parseDigest(digest)!;
  return `blobs/${d.algorithm}/${d.hex}`;
}

/** What a JSON document is when its descriptor does not say: by its own mediaType, else by its fields. */
function kindOf(desc: Descriptor, doc: Record<string, unknown>): 'index' | 'manifest' | 'other' {
  const type = desc.mediaType ?? (typeof doc.mediaType === 'string' ? doc.mediaType : undefined);
  if (type !== undefined) return INDEX_TYPES.has(type) ? 'index' : MANIFEST_TYPES.has(type) ? 'manifest' : 'other';
  if (Array.isArray(doc.manifests)) return 'index';
  if (isRecord(doc.config) && Array.isArray(doc.layers)) return 'manifest';
  return 'other';
}

function tagsOf(desc: Descriptor, inherited: string[]): string[] {
  const own = [desc.annotations[CONTAINERD_NAME], desc.annotations[REF_NAME]].filter((t): t is string => t !== undefined && t !== '');
  return own.length > 0 ? [own[0]!] : inherited;
}

export async function readOciLayout(source: ImageSource, format: 'oci-archive' | 'oci-layout', platform: Platform = hostPlatform()): Promise<ImagePlan[]> {
  const layoutFile = await source.stat('oci-layout');
  if (layoutFile !== undefined) {
    const layout = parseJson(source, 'oci-layout', await source.readAll('oci-layout', 1 << 16));
    if (!isRecord(layout) || typeof layout.imageLayoutVersion !== 'string') {
      throw new InvalidImageError(source.location, 'oci-layout has no imageLayoutVersion');
    }
  }
  const index = parseJson(source, 'index.json', await readVerified(source, 'index.json', 'index', undefined, undefined));
  if (!isRecord(index) || !Array.isArray(index.manifests)) throw new InvalidImageError(source.location, 'index.json has no manifests list');

  const plans = new Map<string, ImagePlan>();
  const otherPlatforms = new Set<string>();
  let skipped = 0;

  const visit = async (list: unknown[], inheritedTags: string[], depth: number, where: string): Promise<void> => {
    if (depth > MAX_INDEX_DEPTH) throw new InvalidImageError(source.location, `indexes nested deeper than ${MAX_INDEX_DEPTH}`);
    for (const [i, raw] of list.entries()) {
      const desc = descriptor(source, raw, `${where} manifests[${i}]`);
      if (desc.platform !== undefined && (desc.platform.os !== platform.os || desc.platform.architecture !== platform.architecture)) {
        otherPlatforms.add(`${desc.platform.os}/${desc.platform.architecture}`);
        continue;
      }
      if (desc.mediaType !== undefined && !INDEX_TYPES.has(desc.mediaType) && !MANIFEST_TYPES.has(desc.mediaType)) {
        debug('skipping %s of media type %s (not an image)', desc.digest, desc.mediaType);
        skipped++;
        continue;
      }
      const doc = parseJson(source, blobName(desc.digest), await readVerified(source, blobName(desc.digest), 'manifest', desc.digest, desc.size));
      if (!isRecord(doc)) throw new InvalidImageError(source.location, `manifest ${desc.digest} is not a JSON object`);
      const kind = kindOf(desc, doc);
      const tags = tagsOf(desc, inheritedTags);
      if (kind === 'index') {
        if (!Array.isArray(doc.manifests)) throw new InvalidImageError(source.location, `index ${desc.digest} has no manifests list`);
        await visit(doc.manifests, tags, depth + 1, `index ${desc.digest}`);
      } else if (kind === 'manifest') {
        const plan = await readManifest(source, format, desc, doc, tags);
        const prior = plans.get(plan.id);
        if (prior === undefined) plans.set(plan.id, plan);
        else prior.tags = [...new Set([...prior.tags, ...plan.tags])];
      } else {
        skipped++;
      }
    }
  };
  await visit(index.manifests, [], 0, 'index.json');

  if (plans.size === 0) {
    if (otherPlatforms.size > 0) {
      throw new InvalidImageError(source.location, `no image for ${platform.os}/${platform.architecture} (it has ${[...otherPlatforms].join(', ')})`);
    }
    throw new InvalidImageError(source.location, `index.json lists no image manifests${skipped > 0 ? ` (${skipped} of other kinds)` : ''}`);
  }
  return [...plans.values()];
}

async function readManifest(source: ImageSource, format: 'oci-archive' | 'oci-layout', desc: Descriptor, doc: Record<string, unknown>, tags: string[]): Promise<ImagePlan> {
  const config = descriptor(source, doc.config, `manifest ${desc.digest} config`);
  if (config.mediaType !== undefined && !CONFIG_TYPES.has(config.mediaType)) {
    throw new InvalidImageError(source.location, `manifest ${desc.digest} is not a container image (config media type ${config.mediaType})`);
  }
  if (!Array.isArray(doc.layers)) throw new InvalidImageError(source.location, `manifest ${desc.digest} has no layers list`);
  const blobs: BlobRef[] = doc.layers.map((l, i) => {
    const d = descriptor(source, l, `manifest ${desc.digest} layers[${i}]`);
    if (d.mediaType !== undefined && !LAYER_TYPES.has(d.mediaType)) {
      throw new InvalidImageError(source.location, `layer ${i + 1} of manifest ${desc.digest} has media type ${d.mediaType}, which is not a layer tar graphdriver can read`);
    }
    const ref: BlobRef = { name: blobName(d.digest), digest: d.digest, size: d.size };
    if (d.mediaType !== undefined) ref.mediaType = d.mediaType;
    return ref;
  });
  const configName = blobName(config.digest);
  const summary = readConfig(source, configName, await readVerified(source, configName, 'image config', config.digest, config.size));
  return {
    id: config.digest,
    tags,
    format,
    os: summary.os,
    architecture: summary.architecture,
    created: summary.created,
    layers: planLayers(source, summary.diffIds, blobs),
  };
}
