/** Public surface of blockdev/: re-exports only. */
export {};
