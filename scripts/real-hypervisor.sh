#!/usr/bin/env bash
# A real hypervisor on this machine, for the real-VM test tier: libvirtd + QEMU (TCG) on
# qemu:///system, a storage pool `novaflow`, and a tiny guest (a Debian kernel and a busybox
# initramfs whose /init prints NOVAFLOW-GUEST-BOOTED to the serial console). Idempotent: it
# installs only what is missing, starts only daemons that are not running, builds the guest
# once (cached outside the repo). No systemd is assumed: the daemons are started by hand.
#
#   scripts/real-hypervisor.sh         set up; prints key=value lines (uri, pool, kernel,
#                                      initrd, marker, started = the daemons this run started;
#                                      initrd2, marker2: a second guest that prints another
#                                      marker, for a rebuild to another image)
#   scripts/real-hypervisor.sh stop    stop the daemons this script started (their pid files)
#
# Exit 77: this machine cannot run QEMU guests at all (the real tier is then skipped).
set -euo pipefail

URI=qemu:///system
POOL=novaflow
POOL_DIR=${NOVAFLOW_POOL_DIR:-/var/lib/novaflow/images}
GUEST_DIR=${NOVAFLOW_GUEST_DIR:-/var/cache/novaflow/guest}
RUN_DIR=/run/novaflow # pid files of the daemons started here: `stop` touches only those
MARKER=NOVAFLOW-GUEST-BOOTED
MARKER2=NOVAFLOW-SECOND-GUEST-UP # not containing MARKER: the boots of each are counted apart
# Load order matters: each needs the ones before it (the kernel package has no modules.dep).
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
DAEMONS=(virtlogd libvirtd) # virtlogd first: libvirtd hands QEMU's output to it

say() { echo "real-hypervisor: $*" >&2; }
cannot() { say "cannot run QEMU here: $*"; exit 77; }

stop_daemons() { # NAME...: those started here (by their pid files), in reverse order
  local daemon pidfile pid i names=("$@")
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do
    daemon=${names[i]}
    pidfile=$RUN_DIR/$daemon.pid
    [[ -s $pidfile ]] || continue
    pid=$(<"$pidfile")
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$daemon" ]]; then
      kill "$pid" || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      say "stopped $daemon (pid $pid)"
    fi
    rm -f "$pidfile"
  done
}

if [[ "${1:-}" == "stop" ]]; then
  stop_daemons "${DAEMONS[@]}"
  exit 0
fi

work="" # the guest's build directory, while there is one
started=() # the daemons this run started
on_exit() {
  local status=$?
  [[ -z "$work" ]] || rm -rf "$work"
  if ((status != 0 && ${#started[@]})); then
    say "set-up failed: stopping the daemons it started"
    stop_daemons "${started[@]}"
  fi
}
trap on_exit EXIT

# ------------------------------------------------------------------ can this machine do it?
[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] || cannot "needs Linux on x86_64"
[[ $(id -u) -eq 0 ]] || cannot "needs root (it runs the system libvirtd)"
mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/lock"
flock 9 # one set-up at a time (two test sessions starting together)

# ------------------------------------------------------------------ packages
packages=(libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
  qemu-utils busybox-static procps)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || cannot "missing ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
fi

# ------------------------------------------------------------------ the guest (built once)
init_script() { # $1: the marker the guest prints once booted
  cat <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $MODULES; do insmod /lib/modules/\$m.ko || echo "NOVAFLOW-INSMOD-FAILED \$m"; done
echo $1
# The root disk: a mark written on its first boot and read back on every later one (a disk
# copied to another host keeps it), and its size in 512-byte sectors (a resize grows it).
if [ -b /dev/vda ]; then
  mark=\$(head -c 64 /dev/vda | tr -d '\\000')
  case "\$mark" in
    NOVAFLOW-DISK-*) ;;
    *) mark="NOVAFLOW-DISK-\$(cat /proc/sys/kernel/random/boot_id)"
       echo "\$mark" | dd of=/dev/vda bs=512 count=1 conv=sync 2>/dev/null; sync ;;
  esac
  echo "NOVAFLOW-ROOT-DISK \$mark \$(cat /sys/block/vda/size)"
fi
while true; do sleep 3600; done
EOF
}

build_guest() {
  local kpkg kver module found busybox
  work=$(mktemp -d)
  chown _apt "$work" 2>/dev/null || true # apt downloads as its own user _apt
  kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'
  }
  kpkg=$(kernel_package)
  [[ -n "$kpkg" ]] || { apt-get update -qq && kpkg=$(kernel_package); }
  [[ -n "$kpkg" ]] || { say "apt-cache depends linux-image-amd64 names no kernel"; exit 1; }
  say "building the guest from $kpkg"
  (cd "$work" && apt-get download -qq "$kpkg")
  dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
  kver=${kpkg#linux-image-}
  mkdir -p "$work/root"/{bin,dev,proc,sys,lib/modules}
  busybox=$(command -v busybox)
  cp "$busybox" "$work/root/bin/busybox"
  for module in $MODULES; do
    found=$(find "$work/kernel/lib/modules/$kver" -name "$module.ko" -o -name "$module.ko.xz" \
      | head -1)
    [[ -n "$found" ]] || { say "module $module is not in $kpkg"; exit 1; }
    case "$found" in
      *.xz) "$busybox" unxz -c "$found" >"$work/root/lib/modules/$module.ko" ;;
      *) cp "$found" "$work/root/lib/modules/$module.ko" ;;
    esac
  done
  mkdir -p "$GUEST_DIR"
  install -m 644 "$work/kernel/boot/vmlinuz-$kver" "$GUEST_DIR/vmlinuz"
  local marker initrd
  for marker in "$MARKER" "$MARKER2"; do
    initrd=initrd.gz
    [[ $marker == "$MARKER" ]] || initrd=initrd2.gz
    init_script "$marker" >"$work/root/init"
    chmod 755 "$work/root/init"
    (cd "$work/root" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$work/$initrd"
    install -m 644 "$work/$initrd" "$GUEST_DIR/$initrd"
  done
}

stamp=$({ init_script "$MARKER"; init_script "$MARKER2"; } | sha1sum | cut -c1-12)
if [[ "$(cat "$GUEST_DIR/stamp" 2>/dev/null)" != "$stamp" ]]; then
  build_guest
  echo "$stamp" >"$GUEST_DIR/stamp"
fi

# ------------------------------------------------------------------ daemons
# What udev does on a normal Debian host (there is no udev here): /dev/kvm belongs to group kvm.
# Otherwise libvirt sees KVM as "gone" for its QEMU user at every call and re-probes QEMU's
# capabilities each time (~4 s per call). Guests still run under TCG (<domain type='qemu'>).
if [[ -c /dev/kvm ]] && getent group kvm >/dev/null && [[ "$(stat -c %G /dev/kvm)" != kvm ]]; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
for daemon in "${DAEMONS[@]}"; do
  # Running in our mount namespace means it serves our /run/libvirt sockets (a daemon of
  # another namespace, e.g. a migration probe's, does not).
  pgrep -x "$daemon" --ns $$ --nslist mnt >/dev/null && continue
  "/usr/sbin/$daemon" -d -p "$RUN_DIR/$daemon.pid" 9>&- # the daemon must not keep the lock
  started+=("$daemon")
  say "started $daemon"
done
# The first qemu:///system connection probes QEMU's capabilities: ~10 s under TCG.
for attempt in $(seq 1 120); do
  timeout 60 virsh -q -c "$URI" version >/dev/null 2>&1 && break
  ((attempt < 120)) || { say "libvirtd does not answer on $URI"; exit 1; }
  sleep 0.5
done

# ------------------------------------------------------------------ storage pool
if ! virsh -q -c "$URI" pool-info "$POOL" >/dev/null 2>&1; then
  mkdir -p "$POOL_DIR"
  virsh -q -c "$URI" pool-define-as "$POOL" dir --target "$POOL_DIR" >/dev/null
  virsh -q -c "$URI" pool-autostart "$POOL" >/dev/null
  say "defined storage pool $POOL ($POOL_DIR)"
fi
active_pools=$(virsh -q -c "$URI" pool-list --name) # (no pipe into grep -q: pipefail + SIGPIPE)
if ! awk -v pool="$POOL" '$1 == pool {found = 1} END {exit !found}' <<<"$active_pools"; then
  mkdir -p "$POOL_DIR"
  virsh -q -c "$URI" pool-start "$POOL" >/dev/null
fi

echo "uri=$URI"
echo "pool=$POOL"
echo "kernel=$GUEST_DIR/vmlinuz"
echo "initrd=$GUEST_DIR/initrd.gz"
echo "marker=$MARKER"
echo "initrd2=$GUEST_DIR/initrd2.gz"
echo "marker2=$MARKER2"
echo "started=${started[*]}"
