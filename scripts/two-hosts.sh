#!/usr/bin/env bash
# Two real hypervisor hosts on this one machine, for the two-host test tier and the disk-copy
# benchmark: two libvirtd daemons (QEMU under TCG), each in its own network namespace and its
# own mount and UTS namespaces (so each has its own /etc/libvirt, /run/libvirt, /var/lib/libvirt
# and host name), reachable over TCP at qemu+tcp://<address>/system. A bridge in the root
# namespace joins them: the daemons reach each other, the compute workers (each runs on its
# host, inside its namespaces) reach each other and Temporal and the API here, at the bridge's
# address, and tools here reach the daemons. Each host has a dir storage pool
# `novaflow` at the same path inside its namespace (/var/lib/libvirt/images/novaflow) on storage
# of its own: a disk overlay copied from one host to the other finds its base image at the same
# path. Measured on these machines: ../shared/ENVIRONMENT.md and recipes/live_migration_probe.sh.
#
#   scripts/two-hosts.sh start   set up (after removing what an earlier run left); prints
#                                key=value lines: uri_a, uri_b, pool, dir_a, dir_b (the pools'
#                                directories as seen from here), pid_a, pid_b (each host's
#                                libvirtd: `nsenter -t PID -n -m -u` runs a command on that
#                                host, as its compute worker runs) and bridge_ip (this
#                                namespace's address on the bridge, where the hosts reach it)
#   scripts/two-hosts.sh stop    stop both daemons and their guests, remove the namespaces,
#                                the bridge and the work directory (idempotent)
#
# Needs root and the packages scripts/real-hypervisor.sh installs (run that first).
# Exit 77: this machine cannot do it (not root, no libvirtd, no network namespaces).
set -euo pipefail

WORK=${NOVAFLOW_TWO_HOSTS_DIR:-/var/lib/novaflow/two-hosts}
LOCK=/run/novaflow/two-hosts.lock
SUBNET=198.51.100 # TEST-NET-2 (RFC 5737): never a real network's
BRIDGE=nflbr0
POOL=novaflow
POOL_TARGET=/var/lib/libvirt/images/novaflow # inside each host's namespace
HOSTS=(a b)

say() { echo "two-hosts: $*" >&2; }
cannot() { say "cannot set up two hosts here: $*"; exit 77; }

netns() { echo "nfl-$1"; }        # the host's network namespace
address() { [[ $1 == a ]] && echo "$SUBNET.1" || echo "$SUBNET.2"; }
uri() { echo "qemu+tcp://$(address "$1")/system"; }

stop_all() {
  local host dir ns pid pidfile
  for host in "${HOSTS[@]}"; do
    dir=$WORK/$host
    ns=$(netns "$host")
    # Every process in the host's network namespace is its daemons' or their guests'.
    if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
      for _ in $(seq 1 50); do
        [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break
        sleep 0.1
      done
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
    for pidfile in "$dir"/libvirtd.pid "$dir"/virtlogd.pid "$dir"/run/qemu/*.pid; do
      [[ -s $pidfile ]] || continue
      pid=$(<"$pidfile")
      kill -9 "$pid" 2>/dev/null || true
    done
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$WORK"
}

start_daemons() { # $1 = a | b
  local host=$1 dir=$WORK/$1 ns ip
  ns=$(netns "$host")
  ip=$(address "$host")
  mkdir -p "$dir"/{run,lib,log,cache}
  cp -a /etc/libvirt "$dir/etc"
  # The machine's own daemon's guests, pools and networks are not this host's.
  rm -f "$dir"/etc/qemu/*.xml "$dir"/etc/qemu/autostart/*.xml "$dir"/etc/storage/*.xml \
    "$dir"/etc/storage/autostart/*.xml "$dir"/etc/qemu/networks/autostart/*.xml
  cp -a /var/lib/libvirt/. "$dir/lib/"
  cat >>"$dir/etc/libvirtd.conf" <<EOF
listen_tls = 0
listen_tcp = 1
listen_addr = "$ip"
auth_tcp = "none"
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
EOF
  cat >>"$dir/etc/qemu.conf" <<EOF
stdio_handler = "file"
remember_owner = 0
user = "root"
group = "root"
security_driver = "none"
EOF
  ip netns add "$ns"
  ip link add "nfl-$host-br" type veth peer name "nfl-$host"
  ip link set "nfl-$host" netns "$ns"
  ip link set "nfl-$host-br" master "$BRIDGE" up
  ip netns exec "$ns" ip addr add "$ip/24" dev "nfl-$host"
  ip netns exec "$ns" ip link set "nfl-$host" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" unshare -m -u sh -c "
    hostname novaflow-host-$host
    mount --bind '$dir/etc' /etc/libvirt
    mount --bind '$dir/run' /run/libvirt
    mount --bind '$dir/lib' /var/lib/libvirt
    mount --bind '$dir/log' /var/log/libvirt
    mount --bind '$dir/cache' /var/cache/libvirt
    virtlogd -d -p '$dir/virtlogd.pid' && libvirtd --listen -d -p '$dir/libvirtd.pid'
  " >"$dir/start.log" 2>&1 9>&- || { say "host $host: $(tail -3 "$dir/start.log")"; return 1; }
}

answers() { # $1 = a | b: the daemon answers from here (its first connection probes QEMU: ~8 s)
  local attempt
  for attempt in $(seq 1 240); do
    timeout 60 virsh -q -c "$(uri "$1")" version >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  say "host $1 does not answer on $(uri "$1")"
  return 1
}

make_pool() { # $1 = a | b
  local u
  u=$(uri "$1")
  virsh -q -c "$u" pool-define-as "$POOL" dir --target "$POOL_TARGET" >/dev/null
  virsh -q -c "$u" pool-build "$POOL" >/dev/null
  virsh -q -c "$u" pool-start "$POOL" >/dev/null
}

mkdir -p "$(dirname "$LOCK")"
exec 9>"$LOCK"
flock 9 # one set-up or tear-down at a time

if [[ "${1:-}" == stop ]]; then
  stop_all
  exit 0
fi
[[ "${1:-}" == start ]] || { say "usage: $0 start|stop"; exit 2; }

[[ $(id -u) -eq 0 ]] || cannot "needs root (network namespaces, its own libvirtd daemons)"
command -v libvirtd >/dev/null || cannot "no libvirtd (run scripts/real-hypervisor.sh first)"
ip netns list >/dev/null 2>&1 || cannot "no network namespaces (ip netns)"

stop_all # what a killed run left behind
routed=$(ip -o route show to "$SUBNET.0/24")
[[ -z "$routed" ]] || cannot "$SUBNET.0/24 is already a network of this machine: $routed"

trap 'status=$?; ((status == 0)) || { say "set-up failed: removing it"; stop_all; }' EXIT
mkdir -p "$WORK"
ip link add "$BRIDGE" type bridge
ip addr add "$SUBNET.254/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
for host in "${HOSTS[@]}"; do start_daemons "$host"; done
for host in "${HOSTS[@]}"; do answers "$host"; done
for host in "${HOSTS[@]}"; do make_pool "$host"; done

echo "uri_a=$(uri a)"
echo "uri_b=$(uri b)"
echo "pool=$POOL"
echo "dir_a=$WORK/a/lib/images/novaflow"
echo "dir_b=$WORK/b/lib/images/novaflow"
echo "pid_a=$(<"$WORK/a/libvirtd.pid")"
echo "pid_b=$(<"$WORK/b/libvirtd.pid")"
echo "bridge_ip=$SUBNET.254"
