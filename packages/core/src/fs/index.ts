/** Public surface of fs/: re-exports only. */
export {};
