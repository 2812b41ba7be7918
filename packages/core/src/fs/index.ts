/** Public surface of fs/: re-exports only. */
export * from './fsmagic.js';
export * from './mountinfo.js';
export * from './locks.js';
export * from './dtype.js';
export * from './refmounts.js';
export * from './unmount.js';
export * from './atomic-write.js';
export * from './mount-options.js';
export * from './path-file-getter.js';
export * from './existing-dir.js';
