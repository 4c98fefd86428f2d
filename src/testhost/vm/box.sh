#!/usr/bin/env bash
# Builds the Vagrant box of the VM tier from Debian packages alone (no box can be downloaded on a build
# machine): the cached test host base image (debootstrapped bookworm) plus a kernel, systemd-networkd,
# the `vagrant` user (sudo without password, a key generated here) and a qcow2 disk, packed as a box for
# the libvirt provider. The same disk, kernel and initrd also boot under qemu directly (src/testhost/vm/vm.sh).
#
#   src/testhost/vm/box.sh          prints the box directory; builds it once (a few minutes), then reuses it
#
# The box directory is the last line of standard output, `verdandi-result: <dir>`: the tools run while
# building (mkfs prints "Creating regular file ...") may write to stdout too, so callers read that line
# alone (src/testhost/vm.ts, scriptResult; vm.sh), never the whole output. Progress goes to stderr.
#
# Everything lives in $VERDANDI_CACHE/vm (default /var/cache/verdandi/vm). Runs as root.
set -euo pipefail
cd "$(dirname "$0")/../../.."

cache="${VERDANDI_CACHE:-/var/cache/verdandi}"
# Bump when what this script puts into the box changes: the next run then builds a new one.
revision=2
box_dir="$cache/vm/box-$revision"
result() { printf 'verdandi-result: %s\n' "$1"; }
if [ -f "$box_dir/.complete" ]; then
  result "$box_dir"
  exit 0
fi

log() { echo "box: $*" >&2; }

# The nspawn hosts' base image: `testhost up` builds it when it is missing, and prints nothing else.
base=$(node --import tsx -e "import('./src/testhost/naming.ts').then((m) => console.log(m.layout().baseDir))")
if [ ! -f "$base/.verdandi-base-complete" ]; then
  log "no test host base image yet: building it (boots and stops a throwaway host vm-box)"
  node bin/verdandi.js testhost up vm-box >&2
  node bin/verdandi.js testhost down vm-box >&2
fi

mirror=$(node --import tsx -e "import('./src/testhost/guest-config.ts').then(async (m) => console.log(JSON.stringify(await m.readMirrors())))")
main_mirror=$(node -e "console.log(JSON.parse(process.argv[1]).main)" "$mirror")
security_mirror=$(node -e "console.log(JSON.parse(process.argv[1]).security ?? '')" "$mirror")

build="$cache/vm/box.build"
root="$build/root"
cleanup() {
  for mount in dev/pts dev proc sys; do umount "$root/$mount" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup
rm -rf "$build"
mkdir -p "$build"
log "copying the base image $base"
cp -a "$base" "$root"
rm -f "$root/.verdandi-base-complete"

mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"

{
  echo "deb $main_mirror bookworm main"
  echo "deb $main_mirror bookworm-updates main"
  if [ -n "$security_mirror" ]; then echo "deb $security_mirror bookworm-security main"; fi
} >"$root/etc/apt/sources.list"
rm -f "$root/etc/resolv.conf"
node --import tsx -e "import('./src/testhost/guest-config.ts').then(async (m) => process.stdout.write(await m.readGuestResolvConf()))" \
  >"$root/etc/resolv.conf"

# dbus: Vagrant sets the hostname with hostnamectl, which talks to systemd-hostnamed over the bus.
log "installing the kernel, systemd-networkd's resolver and the rest (a few minutes)"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  linux-image-amd64 initramfs-tools systemd-resolved dbus udev kmod ifupdown- >&2
chroot "$root" apt-get clean

log "configuring networkd, the vagrant user and ssh"
# DHCP on every Ethernet interface: libvirt's network, or src/testhost/vm/vm.sh's dnsmasq, leases the address.
cat >"$root/etc/systemd/network/80-dhcp.network" <<'NET'
[Match]
Name=eth* en*

[Network]
DHCP=ipv4
NET
chroot "$root" systemctl enable systemd-networkd systemd-resolved >&2
ln -sf /run/systemd/resolve/resolv.conf "$root/etc/resolv.conf"
echo "verdandi-vm" >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 verdandi-vm\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" >"$root/etc/fstab"
: >"$root/etc/machine-id"

mkdir -p "$cache/vm"
key="$cache/vm/vagrant_ed25519"
if [ ! -f "$key" ]; then ssh-keygen -q -t ed25519 -N '' -C verdandi-vm -f "$key"; fi
chroot "$root" useradd --create-home --shell /bin/bash vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"
install -d -m 700 "$root/home/vagrant/.ssh"
install -m 600 "$key.pub" "$root/home/vagrant/.ssh/authorized_keys"
chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh

cleanup
trap - EXIT

log "making the qcow2 disk"
cp "$root"/boot/vmlinuz-* "$build/vmlinuz"
cp "$root"/boot/initrd.img-* "$build/initrd.img"
mkfs.ext4 -q -F -L root -d "$root" "$build/box.raw" 6G >&2
qemu-img convert -O qcow2 "$build/box.raw" "$build/box.img" >&2
rm -rf "$build/box.raw" "$root"

cat >"$build/metadata.json" <<'META'
{ "provider": "libvirt", "format": "qcow2", "virtual_size": 6 }
META
# The box boots its own kernel and initrd directly (the disk is one ext4 file system, no bootloader).
cat >"$build/Vagrantfile" <<'VAGRANT'
Vagrant.configure("2") do |config|
  config.vm.provider "libvirt" do |lv|
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
    lv.disk_bus = "virtio"
  end
  config.ssh.username = "vagrant"
end
VAGRANT
tar -C "$build" -cf "$build/verdandi-bookworm.box" metadata.json Vagrantfile box.img vmlinuz initrd.img
touch "$build/.complete"
rm -rf "$box_dir"
mv "$build" "$box_dir"
result "$box_dir"
