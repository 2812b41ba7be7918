/**
 * `graphdriver import FILE|DIR|-`: the images of a docker-save archive, an OCI archive or an OCI
 * layout directory into the store, verified, shared layers stored once; prints each image's tags
 * and top layer.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openImages } from '../image/open.js';
import { importImages, type ImportedImage } from '../image/import.js';
import { UsageError } from '../errors.js';
import { shortId } from '../format.js';
import { defineCommand, listOption } from './command.js';

export interface ImportResult {
  driver: string;
  images: ImportedImage[];
}

export const importCommand = defineCommand<ImportResult>({
  name: 'import',
  summary: 'import a docker-save archive, an OCI archive or an OCI layout directory',
  usage: '[--tag NAME]... FILE|DIR|-',
  options: {
    tag: { type: 'string', multiple: true, valueName: 'NAME', description: "tag the image NAME instead of the archive's tags (an archive of one image)" },
  },
  args: { min: 1, max: 1 },
  details: [
    'Layers may be uncompressed, gzip or zstd; blob digests, sizes and diff ids are verified. Each layer',
    'is stored under its chain id, so layers shared between images are stored once. A compressed',
    'archive (docker save | gzip) and standard input (-) are read too. An import that fails or is',
    'stopped with Ctrl-C removes the layers it made: the store is left as it was.',
  ],
  async run(ctx, args) {
    const path = args.positionals[0]!;
    const tags = listOption(args, 'tag');
    return ctx.locked(async (store, driver) => {
      // imports run under the lock, so a spool directory found now was left by a killed one
      for (const name of await readdir(store.dir)) {
        if (name.startsWith('import-')) await rm(join(store.dir, name), { recursive: true, force: true });
      }
      const opened = await openImages(path, {
        spoolDir: store.dir,
        stdin: ctx.io.stdin,
        ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
      });
      try {
        if (tags.length > 0 && opened.images.length !== 1) {
          throw new UsageError(`--tag names one image, but ${path} holds ${opened.images.length}`);
        }
        const images = await importImages(driver, store, opened.source, opened.images, {
          signal: ctx.signal,
          progress: ctx.progress,
          tags,
        });
        return { driver: driver.name, images };
      } finally {
        ctx.progress.stop();
        await opened.close();
      }
    });
  },
  render(ctx, r) {
    for (const img of r.images) {
      const fresh = img.layers.filter((l) => !l.reused).length;
      const name = img.tags.length > 0 ? img.tags.join(', ') : '<untagged>';
      const n = img.layers.length;
      ctx.out(`imported ${name}  image ${shortId(img.id)}  ${n} layer${n === 1 ? '' : 's'} (${fresh} new, ${n - fresh} already stored)`);
      ctx.out(`top layer: ${img.topLayer ?? '(none: the image has no layers)'}`);
    }
  },
});
