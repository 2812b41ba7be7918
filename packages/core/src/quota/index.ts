/** Public surface of quota/: re-exports only. */
export { QuotaControl, type QuotaLimit, type QuotaUsage } from './control.js';
export { inspectQuotaFs, type QuotaFs, type QuotaFsFacts } from './detect.js';
export { LazyQuotaControl } from './lazy-control.js';
