/**
 * `docker save` archives (moby's image/tarexport): `manifest.json` lists each image's config file,
 * its tags and its layer files bottom first. Layers are tars (uncompressed as docker writes them,
 * compressed ones are read too, as docker load does); their diff ids come from the config. Files
 * named by their content (`blobs/sha256/<hex>` of docker 25+, `<hex>.json` configs) are checked
 * against that name too. The pre-1.10 format (only `repositories` and `<id>/json`) is refused.
 */
import { formatDigest, parseDigest } from '../digest.js';
import { InvalidImageError } from '../errors.js';
import { digestOf } from '../digest.js';
import { isRecord, parseJson, planLayers, readConfig, readVerified, type BlobRef, type ImagePlan } from './plan.js';
import type { ImageSource } from './source.js';

/** The digest a file's name promises: `blobs/sha256/<hex>` (and `<hex>.json` for configs). */
function digestFromName(name: string, configStyle: boolean): string | undefined {
  const blob = /^(?:\.\/)?blobs\/(sha256|sha512)\/([0-9a-f]+)$/.exec(name);
  if (blob !== null) {
    const d = parseDigest(`${blob[1]}:${blob[2]}`);
    return d === undefined ? undefined : formatDigest(d);
  }
  if (configStyle) {
    const json = /^(?:\.\/)?([0-9a-f]{64})\.json$/.exec(name);
    if (json !== null) return `sha256:${json[1]}`;
  }
  return undefined;
}

function stringList(source: ImageSource, v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new InvalidImageError(source.location, `manifest.json: ${what} is not a list of strings`);
  }
  return v as string[];
}

export async function readDockerArchive(source: ImageSource): Promise<ImagePlan[]> {
  const manifest = parseJson(source, 'manifest.json', await readVerified(source, 'manifest.json', 'manifest', undefined, undefined));
  if (!Array.isArray(manifest) || manifest.length === 0) {
    throw new InvalidImageError(source.location, 'manifest.json lists no images');
  }
  const plans: ImagePlan[] = [];
  for (const [i, entry] of manifest.entries()) {
    if (!isRecord(entry) || typeof entry.Config !== 'string') {
      throw new InvalidImageError(source.location, `manifest.json: image ${i + 1} has no Config`);
    }
    const configName = entry.Config;
    const configBytes = await readVerified(source, configName, 'image config', digestFromName(configName, true), undefined);
    const config = readConfig(source, configName, configBytes);
    const layers = stringList(source, entry.Layers, `image ${i + 1}'s Layers`);
    const blobs: BlobRef[] = layers.map((name) => {
      const digest = digestFromName(name, false);
      return digest === undefined ? { name } : { name, digest };
    });
    plans.push({
      id: digestOf(configBytes),
      tags: stringList(source, entry.RepoTags, `image ${i + 1}'s RepoTags`),
      format: 'docker-archive',
      os: config.os,
      architecture: config.architecture,
      created: config.created,
      layers: planLayers(source, config.diffIds, blobs),
    });
  }
  return plans;
}
