// Fails any TCP connection to a non-loopback address, in the test process and in every child process
// the tests start (NODE_OPTIONS=--import). With no identity variables, @azure/identity would try the
// cloud metadata address; this guard makes such a mistake a loud failure instead of a hang.
import net from 'node:net';

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|::1|\[::1\]|::ffff:127(?:\.\d{1,3}){3})$/i;

export function targetOf(args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first && typeof first === 'object') {
    if (first.path) return undefined; // unix socket / named pipe: local by definition
    return String(first.host ?? 'localhost');
  }
  if (typeof first === 'string' && Number.isNaN(Number(first))) return undefined; // a socket path
  return String(args[1] && typeof args[1] === 'string' ? args[1] : 'localhost');
}

/** Unix sockets (undefined) and loopback hosts only. */
export function isAllowedTarget(host) {
  return host === undefined || LOOPBACK.test(host);
}

const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  const host = targetOf(args);
  if (!isAllowedTarget(host)) {
    const message = `loopback guard: blocked a connection to ${host} (tests may only reach loopback addresses)`;
    process.stderr.write(`${message}\n`);
    throw new Error(message);
  }
  return originalConnect.apply(this, args);
};
