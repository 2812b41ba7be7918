/**
 * The driver's own tests on the reflink pool (this host has no device-mapper): the cases of
 * helpers/driver-cases.ts, which thin-lane.ts runs again on dm-thin in the qemu lane.
 */
import { test } from 'uvu';
import { driverCases } from './helpers/driver-cases.js';

for (const c of driverCases('reflink')) test(`reflink: ${c.name}`, () => c.run());

test.run();
