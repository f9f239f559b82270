#!/usr/bin/env bash
# Seeds for the `uki` and `bls_entry` targets, made by real tools from the Debian fixture:
# - uki: unified kernel images built by `objcopy --add-section` over systemd's own stub
#   (Debian package systemd-boot-efi: linuxx64.efi.stub) with the fixture's os-release, a
#   command line, the kernel release, and the first 16 KiB of its real kernel (the bzImage
#   header) and 2 KiB of its initrd as .linux/.initrd; and systemd-boot itself
#   (systemd-bootx64.efi, recognised by .sdmagic).
# - bls_entry: the Type #1 entry kernel-install 252 (90-loaderentry.install) writes for the
#   fixture's kernel, NUL, a Fedora-style entry with a boot counter; and systemd-boot's
#   loader.conf.
# Usage: fuzz/make-seeds/uki.sh (needs debugfs, objcopy, kernel-install, systemd-boot-efi)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${VHDPREP_FIXTURE_CACHE:-/var/cache/vhdprep-fixtures}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
sdboot=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
for f in "$stub" "$sdboot"; do
    [ -f "$f" ] || { echo "uki.sh: $f is missing: install systemd-boot-efi" >&2; exit 1; }
done
for tool in debugfs objcopy kernel-install; do
    command -v $tool >/dev/null || { echo "uki.sh: $tool is required" >&2; exit 1; }
done
gen2="$cache/gen2-gpt-ext4.raw?offset=269484032"
v=$(debugfs -R "ls /boot" "$gen2" 2>/dev/null | tr -s ' ' '\n' | sed -n 's/^vmlinuz-//p' | head -1)
[ -n "$v" ] || { echo "uki.sh: no kernel in the fixture" >&2; exit 1; }
get() { debugfs -R "dump $1 $2" "$gen2" >/dev/null 2>&1; [ -s "$2" ]; }
get "/boot/vmlinuz-$v" "$tmp/vmlinuz"
get "/boot/initrd.img-$v" "$tmp/initrd"
get /usr/lib/os-release "$tmp/osrel"
seeds() { mkdir -p "$here/seeds/$1"; rm -f "$here/seeds/$1"/*; echo "$here/seeds/$1"; }

out=$(seeds uki)
head -c 16384 "$tmp/vmlinuz" > "$tmp/linux"
head -c 2048 "$tmp/initrd" > "$tmp/initrd.head"
printf 'root=PARTUUID=7e3d2f4b-1a2c-4d3e-9f40-5b6c7d8e9f01 console=ttyS0,115200 rootdelay=300' > "$tmp/cmdline"
printf '%s' "$v" > "$tmp/uname"
objcopy \
    --add-section .osrel="$tmp/osrel" --change-section-vma .osrel=0x20000 \
    --add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline=0x30000 \
    --add-section .uname="$tmp/uname" --change-section-vma .uname=0x40000 \
    --add-section .linux="$tmp/linux" --change-section-vma .linux=0x2000000 \
    --add-section .initrd="$tmp/initrd.head" --change-section-vma .initrd=0x3000000 \
    "$stub" "$out/debian-uki.efi"
cp "$sdboot" "$out/systemd-bootx64.efi"

out=$(seeds bls_entry)
mkdir -p "$tmp/ki/boot/debian" "$tmp/ki/boot/loader/entries" "$tmp/ki/etc"
echo debian > "$tmp/ki/etc/entry-token"
echo "root=UUID=0b3cf3a2-6f4f-4c1e-9d55-2a1f5e6c0e01 ro console=ttyS0,115200 rootdelay=300" > "$tmp/ki/etc/cmdline"
KERNEL_INSTALL_PLUGINS=/usr/lib/kernel/install.d/90-loaderentry.install KERNEL_INSTALL_LAYOUT=bls \
    KERNEL_INSTALL_CONF_ROOT="$tmp/ki/etc" BOOT_ROOT="$tmp/ki/boot" \
    kernel-install add "$v" "$tmp/vmlinuz" "$tmp/initrd" >/dev/null
# kernel-install writes absolute paths when $BOOT_ROOT is not a mount point: make them
# relative to $BOOT as on a real ESP.
sed "s|$tmp/ki/boot||" "$tmp/ki/boot/loader/entries/debian-$v.conf" > "$tmp/e1"
{
    cat "$tmp/e1"
    printf '\0'
    printf 'title Fedora Linux 39\nversion 6.5.6-300.fc39.x86_64\nmachine-id 8a1b6d4e2f7c4d0e9b3a5c7d1e2f3a4b\nsort-key fedora\nlinux /8a1b/6.5.6/linux\ninitrd /8a1b/6.5.6/initrd\noptions root=UUID=1 rw\noptions console=ttyS0\narchitecture x64\n'
} > "$out/kernel-install-and-fedora"
printf 'timeout 3\nconsole-mode keep\ndefault debian-*\neditor no\n' > "$out/loader.conf"
