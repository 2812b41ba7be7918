/**
 * Writing an OCI image layout directory from layer tars (the demo's image, made with core's pack,
 * and test fixtures): each tar hashed for its diff id, gzip-compressed or kept plain, stored as a
 * content-addressed blob; then the config, the manifest and index.json with the tag as
 * `org.opencontainers.image.ref.name` - what `skopeo copy ... oci:DIR:TAG` writes.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { DigestStream, digestOf, parseDigest } from '../digest.js';
import { hostPlatform, MEDIA_TYPES } from './oci.js';

export interface LayerToWrite {
  /** The uncompressed layer tar. */
  tar: Readable;
  compression: 'gzip' | 'none';
}

export interface WrittenImage {
  manifestDigest: string;
  configDigest: string;
  diffIds: string[];
  layerDigests: string[];
}

async function writeBlob(dir: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = digestOf(bytes);
  await writeFile(join(dir, 'blobs', 'sha256', parseDigest(digest)!.hex), bytes);
  return { digest, size: bytes.length };
}

/** Writes an OCI layout at `dir` (created) holding one image of `layers`, bottom first, tagged `tag`. */
export async function writeOciLayout(dir: string, layers: LayerToWrite[], tag: string, created = new Date().toISOString()): Promise<WrittenImage> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const diffIds: string[] = [];
  const descriptors: Array<{ mediaType: string; digest: string; size: number }> = [];
  for (const [i, layer] of layers.entries()) {
    const tmp = join(blobs, `.layer-${i}.tmp`);
    const diff = new DigestStream('sha256');
    const blob = new DigestStream('sha256');
    try {
      if (layer.compression === 'gzip') await pipeline(layer.tar, diff, createGzip(), blob, createWriteStream(tmp));
      else await pipeline(layer.tar, diff, blob, createWriteStream(tmp));
      await rename(tmp, join(blobs, parseDigest(blob.digest)!.hex));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    diffIds.push(diff.digest!);
    descriptors.push({
      mediaType: layer.compression === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
      digest: blob.digest!,
      size: blob.bytes,
    });
  }
  const platform = hostPlatform();
  const config = await writeBlob(
    dir,
    Buffer.from(
      JSON.stringify({
        created,
        architecture: platform.architecture,
        os: platform.os,
        config: {},
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map(() => ({ created, created_by: 'graphdriver' })),
      }),
    ),
  );
  const manifest = await writeBlob(
    dir,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociConfig, digest: config.digest, size: config.size },
        layers: descriptors,
      }),
    ),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: manifest.digest, size: manifest.size, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { manifestDigest: manifest.digest, configDigest: config.digest, diffIds, layerDigests: descriptors.map((d) => d.digest) };
}
