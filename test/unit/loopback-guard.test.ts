import net from 'node:net';
import { expect, it } from 'vitest';
import { isolatedEnv, LOOPBACK_GUARD } from '../support/stack.js';

it('runs every test process, and every child process the tests start, behind the loopback guard', () => {
  expect(net.Socket.prototype.connect.name).toBe('guardedConnect');
  expect(isolatedEnv().NODE_OPTIONS).toBe(`--import=${LOOPBACK_GUARD}`);
  for (const name of Object.keys(isolatedEnv())) expect(name).not.toMatch(/^(IDENTITY_|MSI_|PARTNER_CENTER_)/);
});
