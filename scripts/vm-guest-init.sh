#!/bin/sh
# Boot-time setup of a cnilab node VM, from the kernel command line cnilab
# gives it (one box serves every node of every lab):
#   cnilab.hostname=NAME
#   cnilab.nic=MAC,NAME[,ADDRESS/PREFIX...]  the NIC with MAC becomes NAME (eth0: the underlay, as in the lessons),
#                                          with its addresses (IPv6 ones without DAD: usable at once on the lab's own link)
#   cnilab.key=TYPE:BASE64                 root's SSH key
#   cnilab.share=TAG:PATH[:ro]             a 9p share of the host mounted at PATH (the host's own path)
# Shell builtins wherever they do: under software emulation every process costs.
# CNILAB_GUEST_ROOT puts /proc, /sys, /etc and /root elsewhere (for its test).
set -u
R=${CNILAB_GUEST_ROOT:-}
read -r args <"$R/proc/cmdline"
name= key= nics= shares=
for a in $args; do
  case $a in
  cnilab.hostname=*) name=${a#*=} ;;
  cnilab.key=*) key=${a#*=} ;;
  cnilab.nic=*) nics="$nics ${a#*=}" ;;
  cnilab.share=*) shares="$shares ${a#*=}" ;;
  esac
done

if [ -n "$name" ]; then
  echo "$name" >"$R/proc/sys/kernel/hostname"
  echo "$name" >"$R/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >"$R/etc/hosts"
fi

if [ -n "$key" ]; then
  (umask 077 && mkdir -p "$R/root/.ssh" && echo "${key%%:*} ${key#*:} cnilab" >"$R/root/.ssh/authorized_keys")
fi

# NICs by MAC (the kernel's names depend on probe order): all to a temporary name first, then to theirs.
dev=
find_dev() {
  dev=
  for d in "$R"/sys/class/net/*; do
    read -r hw <"$d/address" && [ "$hw" = "$1" ] && dev=${d##*/} && return
  done
}
first= second= i=0
for nic in $nics; do
  # One assignment per line: dash expands a line's assignments before making any of them.
  mac=${nic%%,*}
  rest=${nic#*,}
  want=${rest%%,*}
  addrs=${rest#"$want"}
  n=0
  find_dev "$mac"
  while [ -z "$dev" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); find_dev "$mac"; done
  [ -n "$dev" ] || { echo "cnilab: no NIC with MAC $mac" >&2; continue; }
  first="${first}link set dev $dev down
link set dev $dev name cnitmp$i
"
  second="${second}link set dev cnitmp$i name $want
link set dev $want up
"
  while [ -n "$addrs" ]; do
    addrs=${addrs#,}
    addr=${addrs%%,*}
    addrs=${addrs#"$addr"}
    case $addr in
    *:*) second="${second}addr add $addr dev $want nodad
" ;;
    ?*) second="${second}addr add $addr dev $want
" ;;
    esac
  done
  i=$((i + 1))
done
printf '%slink set dev lo up\n' "$first$second" | ip -batch -

paths=
for share in $shares; do rest=${share#*:}; paths="$paths ${rest%%:*}"; done
# shellcheck disable=SC2086
[ -z "$paths" ] || mkdir -p $paths
for share in $shares; do
  tag=${share%%:*}
  rest=${share#*:}
  path=${rest%%:*}
  opt=rw
  [ "${rest##*:}" = ro ] && opt=ro
  mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,cache=none,$opt" "$tag" "$path" || echo "cnilab: cannot mount $tag at $path" >&2
done
echo "cnilab: node $name ready"
