import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ping } from '../src/index.js';
test('addon loads', () => { assert.is(ping(), 'pong'); });
test.run();
