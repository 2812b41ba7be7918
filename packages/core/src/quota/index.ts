/** Public surface of quota/: re-exports only. */
export {};
