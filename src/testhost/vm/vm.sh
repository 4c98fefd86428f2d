#!/usr/bin/env bash
# The VM of the slow VM tier, booted from the box of src/testhost/vm/box.sh with qemu directly (TCG: no usable
# KVM on build machines) on a network of its own inside the test hosts' 10.231.0.0/16:
#
#   src/testhost/vm/vm.sh up      boots it at 10.231.S.2 (S: $VERDANDI_VM_SLOT, default 253), waits for ssh as vagrant
#   src/testhost/vm/vm.sh down    kills qemu and removes its disk, tap interface and iptables rules (also leftovers)
#   src/testhost/vm/vm.sh key     prints the private key that logs in as vagrant
#
# What it hands back (the address, the key; `stopped` for down) is its last line of standard output,
# `verdandi-result: <value>`: a tool run on the way may print on stdout too, so callers read that line
# alone (src/testhost/vm.ts, scriptResult), never the whole output. Progress goes to stderr.
#
# The tap interface `vdvmS` carries 10.231.S.1/24 on the build machine, where a dnsmasq (DHCP only, for
# that interface only) leases 10.231.S.2 to the VM, as libvirt's network would. Slot 253 lies outside the
# nspawn hosts' slots (1-250), so both kinds run side by side. What leaves the /24 for the Debian mirror
# is masqueraded by rules commented `verdandi-vm`. Runs as root.
set -euo pipefail
cd "$(dirname "$0")/../../.."

cache="${VERDANDI_CACHE:-/var/cache/verdandi}"
slot="${VERDANDI_VM_SLOT:-253}"
if ! [[ "$slot" =~ ^(25[1-4])$ ]]; then
  echo "vm.sh: VERDANDI_VM_SLOT must be 251-254 (the slots nspawn test hosts never get), not $slot" >&2
  exit 2
fi
address="10.231.$slot.2"
gateway="10.231.$slot.1"
tap="vdvm$slot"
run_dir="$cache/vm/run-$slot"
comment="verdandi-vm"
key="$cache/vm/vagrant_ed25519"

log() { echo "vm: $*" >&2; }
result() { printf 'verdandi-result: %s\n' "$1"; }

rules() {
  echo "nat POSTROUTING -s 10.231.$slot.0/24 ! -d 10.231.0.0/16 -m comment --comment $comment -j MASQUERADE"
  echo "filter FORWARD -i $tap -m comment --comment $comment -j ACCEPT"
  echo "filter FORWARD -o $tap -m comment --comment $comment -j ACCEPT"
}

# Stops a process of ours: only when its command line names our file (a reused pid is someone else's).
stop_process() {
  local pid="$1" ours="$2"
  grep -qF "$ours" "/proc/$pid/cmdline" 2>/dev/null || return 0
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

down() {
  if [ -f "$run_dir/qemu.pid" ]; then
    pid=$(cat "$run_dir/qemu.pid")
    # Only the qemu that runs this slot's disk: a reused pid belongs to someone else.
    stop_process "$(cat "$run_dir/qemu.pid")" "$run_dir/disk.qcow2"
  fi
  if [ -f "$run_dir/dnsmasq.pid" ]; then
    stop_process "$(cat "$run_dir/dnsmasq.pid")" "$run_dir/leases"
  fi
  while read -r table chain rule; do
    # shellcheck disable=SC2086 # the rule is a list of arguments
    while iptables -t "$table" -C "$chain" $rule 2>/dev/null; do iptables -t "$table" -D "$chain" $rule; done
  done < <(rules)
  if ip link show "$tap" >/dev/null 2>&1; then ip link delete "$tap"; fi
  # Forwarding back off if it was off before, unless the nspawn test hosts (which keep their own record
  # of it) still need it.
  if [ "$(cat "$run_dir/ip_forward.before" 2>/dev/null)" = 0 ] && [ ! -f "$cache/ip_forward.before" ]; then
    sysctl -q -w net.ipv4.ip_forward=0
  fi
  rm -rf "$run_dir"
}

up() {
  local box
  box=$(src/testhost/vm/box.sh | sed -n 's/^verdandi-result: //p' | tail -n 1)
  if [ -z "$box" ]; then log "box.sh printed no result line"; exit 1; fi
  down # leftovers of a killed earlier run
  mkdir -p "$run_dir"
  log "network: $tap $gateway/24, the VM at $address"
  ip tuntap add dev "$tap" mode tap
  ip addr add "$gateway/24" dev "$tap"
  ip link set "$tap" up
  cat /proc/sys/net/ipv4/ip_forward >"$run_dir/ip_forward.before"
  sysctl -q -w net.ipv4.ip_forward=1
  while read -r table chain rule; do
    # shellcheck disable=SC2086
    iptables -t "$table" -I "$chain" $rule
  done < <(rules)

  local nameserver
  nameserver=$(node --import tsx -e "import('./src/testhost/guest-config.ts').then(async (m) => console.log(m.nameserversIn(await m.readGuestResolvConf())[0]))")
  dnsmasq --conf-file=/dev/null --user=root --port=0 --bind-interfaces --interface="$tap" \
    --except-interface=lo --dhcp-authoritative --dhcp-range="$address,$address,255.255.255.0,12h" \
    --dhcp-option=option:router,"$gateway" --dhcp-option=option:dns-server,"$nameserver" \
    --dhcp-leasefile="$run_dir/leases" --pid-file="$run_dir/dnsmasq.pid" \
    --log-dhcp --log-facility="$run_dir/dnsmasq.log"
  qemu-img create -q -f qcow2 -b "$box/box.img" -F qcow2 "$run_dir/disk.qcow2"
  log "booting qemu (TCG) from $box"
  qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 1536 \
    -display none -serial "file:$run_dir/console.log" -daemonize -pidfile "$run_dir/qemu.pid" \
    -kernel "$box/vmlinuz" -initrd "$box/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0" \
    -drive "file=$run_dir/disk.qcow2,if=virtio,format=qcow2" \
    -netdev "tap,id=net0,ifname=$tap,script=no,downscript=no" -device virtio-net-pci,netdev=net0

  local deadline=$((SECONDS + ${VERDANDI_VM_BOOT_TIMEOUT:-600}))
  until ssh -q -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 "vagrant@$address" true; do
    if ! kill -0 "$(cat "$run_dir/qemu.pid")" 2>/dev/null; then
      log "qemu exited; the console says:"; tail -20 "$run_dir/console.log" >&2; exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "no ssh on $address after ${VERDANDI_VM_BOOT_TIMEOUT:-600} s; the console says:"
      tail -20 "$run_dir/console.log" >&2; exit 1
    fi
    sleep 2
  done
  log "ready: ssh -i $key vagrant@$address"
}

case "${1:-}" in
  up) up; result "$address" ;;
  down) down; result stopped ;;
  key) result "$key" ;;
  *) echo "usage: src/testhost/vm/vm.sh up|down|key" >&2; exit 2 ;;
esac
