#!/usr/bin/env node
/**
 * The `graphdriver` executable: process streams and signals around main(). The first Ctrl-C (or
 * SIGTERM) aborts what runs - an import removes the layer in progress, a diff its partial file -
 * and the command exits 130 once that is done; a second says it is still cleaning up; a third
 * quits at once (and may leave a partial layer behind).
 */
import { main } from './main.js';

const controller = new AbortController();
let signals = 0;
const onSignal = (signal: NodeJS.Signals): void => {
  signals++;
  if (signals === 1) {
    controller.abort(new Error(`interrupted by ${signal}`));
  } else if (signals === 2) {
    process.stderr.write('\ngraphdriver: still cleaning up after the interrupt; interrupt once more to quit at once (this may leave a partial layer)\n');
  } else {
    process.exit(130);
  }
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: controller.signal,
});
// stdout and stderr are synchronous for files and pipes on Linux: nothing is lost by exiting now,
// and a driver's open handles (fuse helpers, timers) must not keep a finished command alive
process.exit(code);
