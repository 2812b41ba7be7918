/** Public surface of archive/: re-exports only. */
export {};
