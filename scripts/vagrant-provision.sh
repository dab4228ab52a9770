#!/bin/sh
# Provisioning of a cnilab node VM (see the Vagrantfile).
#   packages ADDRESS NODE_BINARY PACKAGE...  the node's Debian packages (no daemon
#       started: cnilab starts its own), and Node.js at the path the host's has,
#       which the agents' command lines name
#   underlay ADDRESS  the interface holding ADDRESS becomes eth0, as in the
#       lessons (their steps and captures name eth0); Vagrant's NAT interface
#       becomes mgmt0 and keeps the VM's default route for `vagrant ssh`
set -eu
what=$1 address=$2
shift 2
case $what in
packages)
  node_binary=$1
  shift
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  export DEBIAN_FRONTEND=noninteractive
  # cnilab's own box has every package already: then provisioning needs no network.
  missing=
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"; done
  command -v node >/dev/null || missing="$missing nodejs"
  if [ -n "$missing" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
  if [ ! -e "$node_binary" ]; then
    mkdir -p "$(dirname "$node_binary")"
    ln -s "$(command -v node)" "$node_binary"
  fi
  ;;
underlay)
  dev=$(ip -o -4 addr show | awk -v a="$address/" 'index($4, a) == 1 { print $2; exit }')
  [ -n "$dev" ] || { echo "no interface holds $address" >&2; exit 1; }
  [ "$dev" = eth0 ] && exit 0
  gw=$(ip route show default | awk '{ print $3; exit }')
  ip link set eth0 down
  ip link set eth0 name mgmt0
  ip link set mgmt0 up
  ip link set "$dev" down
  ip link set "$dev" name eth0
  ip link set eth0 up
  [ -z "$gw" ] || ip route replace default via "$gw" dev mgmt0
  ;;
*)
  echo "usage: $0 packages|underlay ADDRESS ..." >&2
  exit 2
  ;;
esac
