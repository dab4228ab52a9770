#!/usr/bin/env bash
# System packages cnilab needs (Debian/Ubuntu, as root). Services that the
# packages would start on install are held back: cnilab starts its own, by PID,
# inside the lab's namespaces.
set -euo pipefail
PACKAGES=(
  iproute2 iptables ipset iputils-ping curl util-linux procps psmisc kmod
  iperf3 sockperf ethtool nginx tcpdump busybox-static
  etcd-server etcd-client bird2
  # flannel's wireguard backend: wg, and the user-space daemon for kernels without the module.
  wireguard-tools wireguard-go
  containernetworking-plugins podman
  clang llvm libbpf-dev linux-libc-dev bpftool
  # Services: kube-proxy's nftables mode, and the cluster DNS (the binary only: no
  # dnsmasq service is installed to start on its own).
  nftables dnsmasq-base
  # podman's own dependencies bring crun, which refuses hosts with hybrid
  # cgroup v1/v2 mounts; runc runs there. No fuse-overlayfs, slirp4netns or
  # netavark: the tests use vfs storage, rootful podman and the CNI backend.
  runc
  # The C shim in dist/cni/bin that hands CNI calls to the node's daemon
  # (libc6-dev brings the static libc it links against).
  gcc libc6-dev
  # node-pty (cnilab serve's terminals) is compiled by node-gyp where npm has no build for this platform.
  g++ make python3
  # cnilab diagram's test opens the SVG in chromium, and the report's test the HTML page;
  # cnilab lesson's test drives it in tmux.
  chromium tmux
  # The docker backend: a private dockerd, its node image made with debootstrap; the Vagrantfile checked with vagrant.
  docker.io debootstrap vagrant
  # The vagrant backend's VMs: qemu (KVM where it works, else software emulation),
  # their disks (qemu-img); cnilab runs qemu itself (users of the Vagrantfile bring their own provider);
  # e2fsprogs makes the box's root filesystem from a directory, openssh-client reaches the VMs.
  qemu-system-x86 qemu-utils e2fsprogs openssh-client
  # ... booted through Vagrant's libvirt provider on a libvirtd cnilab starts per lab
  # (not the system's: no -system package, no service); dnsmasq-base serves its DHCP.
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients vagrant-libvirt
)
# libvirt's qemu driver looks up its compiled-in user and group, libvirt-qemu, as it
# starts, whatever qemu.conf says (cnilab's runs qemu as root). libvirt-daemon-system
# would make them, but also a system libvirtd with a NAT network in the root
# namespace: make only the user and group.
libvirt_qemu_user() {
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null ||
    useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt --no-create-home --shell /usr/sbin/nologin --comment "Libvirt Qemu" libvirt-qemu
}
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  [ "$(id -u)" -ne 0 ] || libvirt_qemu_user
  echo "setup: all system packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages ${missing[*]}; run this script as root (apt-get install)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
# Keep package scripts from starting daemons (nginx, etcd, bird) in the root namespace.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ $created_policy -eq 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
libvirt_qemu_user
echo "setup: done"
