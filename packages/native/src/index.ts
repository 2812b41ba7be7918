import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const binding = require('../build/Release/graphdriver_native.node') as { ping(): string };
export const ping = (): string => binding.ping();
