import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, handle, socketPath } from '../../src/cni/daemon.js';
import { cniPlugins } from '../../src/datapaths/index.js';

const PLUGINS = cniPlugins();

describe('CNI daemon wire format', () => {
  it('carries plugin name, CNI_* variables and stdin, and nothing else of the environment', () => {
    const raw = encodeRequest({ plugin: 'bridge', env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B=2', HOME: '/root' }, stdin: '{"a":"x\\u0000y"}' });
    const r = decodeRequest(raw);
    expect(r.plugin).to.equal('bridge');
    expect(r.env).to.deep.equal({ CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B=2' });
    expect(r.stdin).to.equal('{"a":"x\\u0000y"}');
  });
  it('keeps an empty CNI_NETNS (DEL after the namespace is gone) and empty stdin', () => {
    const r = decodeRequest(encodeRequest({ plugin: 'bridge', env: { CNI_NETNS: '' }, stdin: '' }));
    expect(r.env).to.deep.equal({ CNI_NETNS: '' });
    expect(r.stdin).to.equal('');
  });
  it('reads a response as exit code and stdout', () => {
    expect(decodeResponse(encodeResponse(7, '{"code":7}\n'))).to.deep.equal({ code: 7, stdout: '{"code":7}\n' });
    expect(() => decodeResponse(Buffer.from('12'))).to.throw(/without an answer/);
  });
  it('names the socket after the namespace inode', () => {
    expect(socketPath('/run/cnilab', 4026532177)).to.equal('/run/cnilab/cni-4026532177.sock');
  });
});

describe('CNI daemon calls', () => {
  it('answers VERSION in-process', async () => {
    const r = await handle(PLUGINS, encodeRequest({ plugin: 'host-local', env: { CNI_COMMAND: 'VERSION' }, stdin: '' }));
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout).supportedVersions).to.include('1.1.0');
  });
  it('reports an unknown plugin as code 50 and a malformed request as code 6', async () => {
    const unknown = await handle(PLUGINS, encodeRequest({ plugin: 'nosuchplugin', env: { CNI_COMMAND: 'VERSION' }, stdin: '' }));
    expect(unknown.code).to.equal(50);
    expect(JSON.parse(unknown.stdout)).to.include({ code: 50 });
    expect(JSON.parse(unknown.stdout).msg).to.include('nosuchplugin');
    const broken = await handle(PLUGINS, Buffer.from('bridge'));
    expect(JSON.parse(broken.stdout)).to.include({ code: 6 });
  });
  it('passes a plugin error through with its code and exit status', async () => {
    const r = await handle(PLUGINS, encodeRequest({ plugin: 'bridge', env: { CNI_COMMAND: 'ADD' }, stdin: '{}' }));
    expect(r.code).to.equal(4);
    expect(JSON.parse(r.stdout).msg).to.include('CNI_CONTAINERID');
  });
  it('serves exactly the plugins the build made an executable for (both come from the plugin tables)', () => {
    const executables = readdirSync('dist/cni/bin').filter((f) => !f.startsWith('.'));
    expect(Object.keys(PLUGINS).sort()).to.deep.equal(executables.sort());
  });
});
