#!/bin/sh
# Boot-time setup of a cnilab node VM, from the kernel command line cnilab
# gives it (one box serves every node of every lab):
#   cnilab.hostname=NAME
#   cnilab.nic=MAC,NAME[,ADDRESS/PREFIX]  the NIC with MAC becomes NAME (eth0: the underlay, as in the lessons)
#   cnilab.key=TYPE:BASE64                 root's SSH key
#   cnilab.share=TAG:PATH[:ro]             a 9p share of the host mounted at PATH (the host's own path)
set -u
args=$(cat /proc/cmdline)
value() { for a in $args; do case $a in "$1"=*) echo "${a#*=}" ;; esac; done; }

name=$(value cnilab.hostname)
[ -z "$name" ] || { echo "$name" >/proc/sys/kernel/hostname; echo "$name" >/etc/hostname; printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >/etc/hosts; }

key=$(value cnilab.key)
if [ -n "$key" ]; then
  mkdir -p /root/.ssh && chmod 700 /root/.ssh
  echo "${key%%:*} ${key#*:} cnilab" >/root/.ssh/authorized_keys
fi

# NICs by MAC (the kernel's names depend on probe order): first all to a temporary name, then to theirs.
dev_of() { for d in /sys/class/net/*; do [ "$(cat "$d/address")" = "$1" ] && basename "$d" && return; done; }
i=0
for nic in $(value cnilab.nic); do
  mac=${nic%%,*}
  n=0; while [ -z "$(dev_of "$mac")" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done
  dev=$(dev_of "$mac")
  [ -n "$dev" ] || { echo "cnilab: no NIC with MAC $mac" >&2; continue; }
  ip link set "$dev" down && ip link set "$dev" name "cnitmp$i"
  i=$((i+1))
done
i=0
for nic in $(value cnilab.nic); do
  rest=${nic#*,}; want=${rest%%,*}; addr=${rest#"$want"}; addr=${addr#,}
  ip link set "cnitmp$i" name "$want" 2>/dev/null || true
  ip link set "$want" up
  [ -z "$addr" ] || ip addr add "$addr" dev "$want"
  i=$((i+1))
done
ip link set lo up

for share in $(value cnilab.share); do
  tag=${share%%:*}; rest=${share#*:}; path=${rest%%:*}; opt=rw
  [ "${rest##*:}" = ro ] && opt=ro
  mkdir -p "$path"
  mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,cache=none,$opt" "$tag" "$path" || echo "cnilab: cannot mount $tag at $path" >&2
done
echo "cnilab: node $name ready"
