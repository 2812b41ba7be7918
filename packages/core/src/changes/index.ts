/** Public surface of changes/: re-exports only. */
export {};
