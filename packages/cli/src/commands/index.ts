/** Every command of `graphdriver`, in the order help lists them. */
import { applyCommand } from './apply.js';
import { changesCommand } from './changes.js';
import type { Command } from './command.js';
import { createCommand } from './create.js';
import { demoCommand } from './demo.js';
import { diffCommand } from './diff.js';
import { exportCommand } from './export.js';
import { imagesCommand, rmiCommand } from './images.js';
import { importCommand } from './import.js';
import { infoCommand } from './info.js';
import { lsCommand } from './ls.js';
import { mountCommand, umountCommand } from './mount.js';
import { rmCommand } from './rm.js';
import { shutdownCommand } from './shutdown.js';
import { statusCommand } from './status.js';

export const COMMANDS: ReadonlyArray<Command<unknown>> = [
  importCommand,
  createCommand,
  mountCommand,
  umountCommand,
  lsCommand,
  changesCommand,
  diffCommand,
  applyCommand,
  exportCommand,
  rmCommand,
  imagesCommand,
  rmiCommand,
  statusCommand,
  infoCommand,
  shutdownCommand,
  demoCommand,
] as ReadonlyArray<Command<unknown>>;

export function findCommandNamed(name: string): Command<unknown> | undefined {
  return COMMANDS.find((c) => c.name === name);
}
