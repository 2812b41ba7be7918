/** @graphdriver/core public surface: re-exports only. */
export * from './errors.js';
export * from './id.js';
export * from './host-root.js';
export * from './driver.js';
export * from './fs/index.js';
export * from './registry.js';
export * from './options.js';
export * from './size.js';
export * from './archive/index.js';
export * from './changes/index.js';
export * from './naive-diff.js';
export * from './quota/index.js';
export * from './blockdev/index.js';
