// The pure parts of the VMs the vagrant backend boots with qemu: the modules
// the box's initramfs loads and in which order, the archive the kernel
// unpacks, and the command lines of qemu and of the guest's kernel.
import { expect } from 'chai';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpioNewc, moduleLoadOrder } from '../../src/topologies/vm-initramfs.js';
import { kernelCmdline, qemuArgv, sshConfigText, vmConsole, vmDisk, withProxyCommand } from '../../src/topologies/vm.js';
import { libvirtUri, libvirtVagrantfile } from '../../src/topologies/vm-libvirt.js';
import { GUEST_INIT } from '../../src/topologies/vm-box.js';

const DEP = [
  'kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko',
  'kernel/fs/jbd2/jbd2.ko:',
  'kernel/crypto/crc32c_generic.ko:',
  'kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
  'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
].join('\n');

describe('VMs: the box initramfs and the qemu command line', () => {
  it('loads each module once, after what it depends on', () => {
    expect(moduleLoadOrder(DEP, ['virtio_pci', 'virtio_blk', 'ext4'])).to.deep.equal([
      'kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
      'kernel/drivers/virtio/virtio_pci_legacy_dev.ko',
      'kernel/drivers/virtio/virtio_pci.ko',
      'kernel/drivers/block/virtio_blk.ko',
      'kernel/fs/jbd2/jbd2.ko',
      'kernel/fs/mbcache.ko',
      'kernel/lib/crc16.ko',
      'kernel/fs/ext4/ext4.ko',
    ]);
    expect(() => moduleLoadOrder(DEP, ['nope'])).to.throw('module nope is not in modules.dep');
  });

  it('writes a newc archive that cpio (or bsdcpio) reads back, device node included; skipped when neither is installed', async function () {
    const tool = (await execa('sh', ['-c', 'command -v cpio || command -v bsdcpio'], { reject: false })).stdout.trim();
    if (!tool) return this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'cnilab-cpio-'));
    try {
      const archive = cpioNewc([
        { name: 'bin', mode: 0o40755, data: Buffer.alloc(0) },
        { name: 'bin/hello', mode: 0o100755, data: Buffer.from('hi there\n') },
        { name: 'dev', mode: 0o40755, data: Buffer.alloc(0) },
        { name: 'dev/console', mode: 0o20600, data: Buffer.alloc(0), rdev: [5, 1] },
      ]);
      writeFileSync(join(dir, 'a.cpio'), archive);
      const list = await execa(tool, ['-itv', '-F', join(dir, 'a.cpio')]);
      expect(list.stdout).to.match(/^crw-------.* 5,\s*1 .*dev\/console$/m);
      await execa(tool, ['-id', '-F', join(dir, 'a.cpio')], { cwd: dir });
      expect(readFileSync(join(dir, 'bin/hello'), 'utf8')).to.equal('hi there\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('qemu: direct kernel boot, the underlay NIC first; the guest learns its NICs and key from the kernel command line; ssh reaches it through the lab namespace', () => {
    const box = { dir: '/c', image: '/c/box.img', kernel: '/c/vmlinuz', initrd: '/c/initrd.img', hash: 'h' };
    const spec = { lab: 'l1', node: 'worker', index: 1, address: '192.168.10.220', prefix: 24, box, accel: 'tcg' as const, publicKey: 'ssh-ed25519 AAAAkey cnilab-l1\n', memoryMb: 512 };
    const argv = qemuArgv(spec);
    expect(argv.slice(0, 5)).to.deep.equal(['qemu-system-x86_64', '-name', 'l1-worker', '-accel', 'tcg']);
    expect(argv).to.not.include('-cpu');
    expect(argv.join(' ')).to.include(`-drive file=${vmDisk('l1', 'worker')},if=virtio,format=qcow2`);
    const nics = argv.filter((a) => a.startsWith('virtio-net-pci'));
    expect(nics).to.deep.equal(['virtio-net-pci,netdev=u,mac=52:54:00:00:02:01', 'virtio-net-pci,netdev=m,mac=52:54:00:00:02:02']);
    const cmdline = kernelCmdline(spec);
    expect(argv[argv.indexOf('-append') + 1]).to.equal(cmdline);
    expect(cmdline.split(' ')).to.include.members([
      'root=/dev/vda',
      'cnilab.hostname=worker',
      'cnilab.nic=52:54:00:00:02:01,eth0,192.168.10.220/24',
      'cnilab.nic=52:54:00:00:02:02,mgmt0,100.127.0.3/24',
      'cnilab.key=ssh-ed25519:AAAAkey',
    ]);
    expect(cmdline).to.not.include('fd00:');
    // A dual-stack underlay: the node's IPv6 address on the same NIC, beside the IPv4 one.
    const dual = kernelCmdline({ ...spec, addressV6: 'fd00:192:168:10::220', prefixV6: 64 });
    expect(dual.split(' ')).to.include('cnilab.nic=52:54:00:00:02:01,eth0,192.168.10.220/24,fd00:192:168:10::220/64');
    expect(kernelCmdline({ ...spec, addressV6: 'fd00:192:168:10::220', prefixV6: 64 }, 'dhcp').split(' ')).to.include('cnilab.nic=52:54:00:00:02:01,eth0,192.168.10.220/24,fd00:192:168:10::220/64');
    expect(qemuArgv({ ...spec, accel: 'kvm' }).slice(3, 7)).to.deep.equal(['-accel', 'kvm', '-cpu', 'host']);
    const config = sshConfigText('l1', ['master', 'worker'], '/k');
    expect(config).to.match(/Host worker\n {2}HostName 100\.127\.0\.3\n {2}User root\n {2}IdentityFile \/k/);
    // The management network exists only in the lab's namespace: ssh gets there through a relay started inside it.
    expect(config).to.match(/\n {2}ProxyCommand nsenter --net=\/run\/netns\/\S*l1-underlay -- \S+ -e '[^']+' %h %p 2>\/dev\/null\n/);
  });

  it("vagrant-libvirt: the lab's Vagrantfile names the lab's libvirtd, TCG or KVM, direct kernel boot with DHCP on the management NIC, the underlay bridge as eth0; vagrant's ssh config gets the relay", async () => {
    const box = { dir: '/c', image: '/c/box.img', kernel: '/c/vmlinuz', initrd: '/c/initrd.img', hash: 'h' };
    const spec = { lab: 'l1', node: 'worker', index: 1, address: '192.168.10.220', prefix: 24, box, accel: 'tcg' as const, publicKey: 'ssh-ed25519 AAAAkey cnilab-l1\n', memoryMb: 512 };
    const cmdline = kernelCmdline(spec, 'dhcp');
    expect(cmdline.split(' ')).to.include.members(['cnilab.nic=52:54:00:00:02:02,mgmt0', 'ip=mgmt0:dhcp', 'systemd.wants=systemd-networkd.service']);
    expect(cmdline).to.not.include('100.127.0.');
    const vms = [{ node: 'worker', underlayMac: '52:54:00:00:02:01', mgmtMac: '52:54:00:00:02:02', cmdline, console: vmConsole('l1', 'worker') }];
    const o = { lab: 'l1', box: 'cnilab/node-h', accel: 'tcg' as const, key: '/k', memoryMb: 512, bootTimeoutS: 600, underlayBridge: 'br0', mgmtNetwork: '100.127.0.0/24', vms };
    const text = libvirtVagrantfile(o);
    expect(text).to.include(`l.uri = "${libvirtUri('l1')}"`);
    expect(libvirtUri('l1')).to.match(/^qemu\+unix:\/\/\/system\?socket=\/\S+\/l1\/libvirt\/libvirt-sock$/);
    expect(text).to.include('l.driver = "qemu"');
    expect(libvirtVagrantfile({ ...o, accel: 'kvm' })).to.include('l.driver = "kvm"');
    expect(text).to.include(`l.cmd_line = ${JSON.stringify(cmdline)}`);
    expect(text).to.include('m.vm.network :public_network, dev: "br0", mode: \'bridge\', type: \'bridge\', mac: "52:54:00:00:02:01", auto_config: false');
    expect(text).to.include("l.management_network_mode = 'none'");
    expect(text).to.include(`:path => "${vmConsole('l1', 'worker')}"`);
    // Ruby reads it (vagrant's own check needs the box added; the syntax is checked wherever ruby is).
    const dir = mkdtempSync(join(tmpdir(), 'cnilab-vf-'));
    try {
      writeFileSync(join(dir, 'Vagrantfile'), text);
      const r = await execa('ruby', ['-c', join(dir, 'Vagrantfile')], { reject: false });
      if ((r as { code?: string }).code !== 'ENOENT') expect(r.stdout + r.stderr).to.include('Syntax OK');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const config = withProxyCommand('l1', 'Host master\n  HostName 100.127.0.7\n  User root\n\nHost worker\n  HostName 100.127.0.9\n  User root\n\n');
    expect(config.match(/ProxyCommand nsenter --net=\/run\/netns\/\S*l1-underlay /g)).to.have.length(2);
    expect(config).to.match(/Host worker\n {2}HostName 100\.127\.0\.9\n {2}User root\n {2}ConnectTimeout 10\n/);
  });

  it("the guest's setup script: NICs renamed by MAC whatever the kernel called them, addresses (IPv6 without DAD), hostname, root's key, 9p shares", async () => {
    const root = mkdtempSync(join(tmpdir(), 'cnilab-guest-'));
    try {
      const w = (path: string, text: string, mode = 0o644) => {
        mkdirSync(join(root, path, '..'), { recursive: true });
        writeFileSync(join(root, path), text, { mode });
      };
      const spec = { lab: 'l1', node: 'master', index: 0, address: '192.168.10.210', prefix: 24, addressV6: 'fd00:192:168:10::210', prefixV6: 64, box: { dir: '', image: '', kernel: '', initrd: '', hash: '' }, accel: 'tcg' as const, publicKey: 'ssh-ed25519 AAAAkey x', memoryMb: 512 };
      w('proc/cmdline', `${kernelCmdline(spec)} cnilab.share=dist:${root}/dist:ro cnilab.share=lab:${root}/run/l1\n`);
      w('proc/sys/kernel/hostname', '');
      w('etc/hostname', '');
      // The kernel named them the other way round.
      w('sys/class/net/eth0/address', '52:54:00:00:01:02\n');
      w('sys/class/net/eth1/address', '52:54:00:00:01:01\n');
      // ip, mount and mkdir record what they were asked (mkdir makes only what is inside the fake root).
      for (const tool of ['ip', 'mount', 'mkdir']) w(`bin/${tool}`, `#!/bin/sh\necho "${tool} $*" >>"${root}/calls"\n[ "$1" = -batch ] && cat >>"${root}/calls"\n[ ${tool} = mkdir ] && [ "\${2#${root}}" != "$2" ] && exec /bin/mkdir "$@"\nexit 0\n`, 0o755);
      const env = { CNILAB_GUEST_ROOT: root, PATH: `${root}/bin:/usr/bin:/bin` };
      const r = await execa('sh', [GUEST_INIT], { env, extendEnv: false });
      expect(r.stdout).to.include('cnilab: node master ready');
      const calls = readFileSync(join(root, 'calls'), 'utf8');
      expect(calls).to.include(
        [
          'ip -batch -',
          'link set dev eth1 down',
          'link set dev eth1 name cnitmp0',
          'link set dev eth0 down',
          'link set dev eth0 name cnitmp1',
          'link set dev cnitmp0 name eth0',
          'link set dev eth0 up',
          'addr add 192.168.10.210/24 dev eth0',
          'addr add fd00:192:168:10::210/64 dev eth0 nodad',
          'link set dev cnitmp1 name mgmt0',
          'link set dev mgmt0 up',
          'addr add 100.127.0.2/24 dev mgmt0',
          'link set dev lo up',
        ].join('\n'),
      );
      expect(calls).to.match(/^mount -t 9p -o trans=virtio,version=9p2000\.L,msize=262144,cache=none,ro dist \S+\/dist$/m);
      expect(calls).to.match(/^mount -t 9p -o \S+,rw lab \S+\/l1$/m);
      expect(readFileSync(join(root, 'proc/sys/kernel/hostname'), 'utf8')).to.equal('master\n');
      expect(readFileSync(join(root, 'etc/hosts'), 'utf8')).to.include('127.0.1.1 master');
      expect(readFileSync(join(root, 'root/.ssh/authorized_keys'), 'utf8')).to.equal('ssh-ed25519 AAAAkey cnilab\n');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
