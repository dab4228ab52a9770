// Work done "in a namespace" by a process that is not in it (thread-netns.ts):
// a TCP connection and a sysctl read made on behalf of a namespace land there,
// not in the namespace the process itself is in.
import { expect } from 'chai';
import { request } from 'node:http';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNetns, netnsPath, startDetached } from '../../src/net/exec.js';
import { Ip } from '../../src/net/ip.js';
import { addNetns, deleteNetns } from '../../src/net/netns.js';
import { connectInAmbientNetns, withAmbientNetns } from '../../src/net/thread-netns.js';
import { stopPid } from '../../src/lab/processes.js';
import { waitUntil } from '../../src/util/wait.js';

const NS = `cnitest-t-${process.pid}`;
const PORT = 18181;

/** GET / on 127.0.0.1:PORT through connectInAmbientNetns: the status, or the error's code. */
const get = () =>
  new Promise<string>((resolve) => {
    const req = request(`http://127.0.0.1:${PORT}/`, { createConnection: connectInAmbientNetns }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });

describe('thread-netns: work on behalf of a namespace this process is not in', function () {
  this.timeout(30_000);
  let server = 0;
  let dir = '';

  before(async () => {
    await addNetns(NS);
    const ip = new Ip(NS);
    await ip.cmd('link', 'set', 'lo', 'up');
    await ip.sysctl({ 'net.ipv4.ip_default_ttl': 33 });
    dir = mkdtempSync(join(tmpdir(), 'cnitest-t-'));
    const log = openSync(join(dir, 'server.log'), 'a');
    try {
      // Listens on the namespace's loopback only: from anywhere else 127.0.0.1:PORT is refused.
      server = startDetached(inNetns(NS, process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${PORT}, '127.0.0.1')`]), { stdout: log, stderr: log });
    } finally {
      closeSync(log);
    }
    await waitUntil(async () => (await withAmbientNetns(netnsPath(NS), get)) === '200', { timeoutMs: 10_000, intervalMs: 50, what: `the test server in ${NS}` });
  });
  after(async () => {
    if (server) await stopPid(server, 2000);
    await deleteNetns(NS).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a TCP connection made for the namespace reaches its loopback; one made for none does not", async () => {
    expect(await withAmbientNetns(netnsPath(NS), get)).to.equal('200');
    expect(await get()).to.equal('ECONNREFUSED');
  });

  it("a sysctl read for the namespace is the namespace's value; a missing key is undefined", async () => {
    expect(await withAmbientNetns(netnsPath(NS), () => new Ip().readSysctl('net.ipv4.ip_default_ttl'))).to.equal('33');
    expect(await new Ip(NS).readSysctl('net.ipv4.ip_default_ttl')).to.equal('33');
    expect(await new Ip().readSysctl('net.ipv4.ip_default_ttl'), "this process's own namespace").to.not.equal('33');
    expect(await new Ip().readSysctl('net.ipv4.no_such_key')).to.equal(undefined);
  });
});
