/** @graphdriver/testkit: helpers for the workspace's tests and benchmarks (re-exports only). */
export * from './scratch-fs.js';
export * from './vm-lane.js';
export * from './limited.js';
export * from './reports.js';
