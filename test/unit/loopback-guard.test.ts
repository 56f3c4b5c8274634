import net from 'node:net';
import { expect, it } from 'vitest';
import { isAllowedTarget, targetOf } from '../../dev/support/loopback-guard.mjs';
import { isolatedEnv, LOOPBACK_GUARD } from '../support/stack.js';

it('runs every test process, and every child process the tests start, behind the loopback guard', () => {
  expect(net.Socket.prototype.connect.name).toBe('guardedConnect');
  expect(isolatedEnv().NODE_OPTIONS).toBe(`--import=${LOOPBACK_GUARD}`);
  for (const name of Object.keys(isolatedEnv())) expect(name).not.toMatch(/^(IDENTITY_|MSI_|PARTNER_CENTER_)/);
});

it('lets loopback and local sockets through and refuses every other target', () => {
  for (const args of [
    [{ host: '127.0.0.1', port: 1 }],
    [1, 'localhost'],
    [[{ host: '::1', port: 1 }]],
    [{ path: '/tmp/s' }],
    [80],
  ]) {
    expect(isAllowedTarget(targetOf(args)), JSON.stringify(args)).toBe(true);
  }
  for (const args of [
    [{ host: '169.254.169.254', port: 80 }], // the cloud metadata address: refused
    [443, 'api.partner.microsoft.com'],
    [[{ host: '10.0.0.1', port: 1 }]],
    [{ host: '192.168.1.20', port: 1 }],
  ]) {
    expect(isAllowedTarget(targetOf(args)), JSON.stringify(args)).toBe(false);
  }
});
