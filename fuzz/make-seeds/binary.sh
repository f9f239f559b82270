#!/usr/bin/env bash
# Seeds for the binary targets (crates/fuzz/src/binary.rs), all cut from the Debian fixture
# images (read-only: debugfs, mtools, dd):
# - initramfs/cpio: newc archives (`cpio -o -H newc`) of a few real files of the image,
#   compressed with each format the kernel accepts, an early-microcode style concatenation,
#   and the first KiBs of the image's real initramfs;
# - pe/authenticode: the real signed EFI loaders of the ESPs (shim, grub, mokmanager,
#   fallback; amd64 and arm64), cut to their first 4 KiB (every header) plus the
#   certificate table, the table's directory entry moved to match; and the raw PKCS#7
#   signatures alone;
# - elf: the first 4 KiB of real executables and a kernel module (amd64 and arm64);
# - grub_pc: LBA 0 and the embedded core.img of the BIOS fixtures.
# Usage: fuzz/make-seeds/binary.sh (needs debugfs, mtools, cpio, gzip, zstd, xz, lz4, bzip2)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${VHDPREP_FIXTURE_CACHE:-/var/cache/vhdprep-fixtures}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for tool in debugfs mcopy cpio gzip zstd xz lz4 bzip2 python3; do
    command -v $tool >/dev/null || { echo "binary.sh: $tool is required" >&2; exit 1; }
done
gen2="$cache/gen2-gpt-ext4.raw?offset=269484032"
arm64="$cache/arm64-gpt-ext4.raw?offset=269484032"
v=6.1.0-56-cloud-amd64
get() {
    rm -f "$3"
    debugfs -R "dump $2 $3" "$1" >/dev/null 2>&1
    [ -s "$3" ] || { echo "binary.sh: $2 not found in $1" >&2; exit 1; }
}
# seeds TARGET: its (emptied) seed folder.
seeds() { mkdir -p "$here/seeds/$1"; rm -f "$here/seeds/$1"/*; echo "$here/seeds/$1"; }

# --- initramfs and cpio
root="$tmp/root"
mkdir -p "$root/etc" "$root/usr/lib/modules/$v/kernel/drivers/hv" "$root/scripts" \
    "$root/kernel/x86/microcode"
get "$gen2" /etc/fstab "$root/etc/fstab"
get "$gen2" /usr/lib/os-release "$root/etc/os-release"
get "$gen2" /etc/initramfs-tools/modules "$root/etc/modules"
get "$gen2" /usr/share/initramfs-tools/init "$root/init"
for m in hv_vmbus hv_storvsc hv_netvsc; do : > "$root/usr/lib/modules/$v/kernel/drivers/hv/$m.ko"; done
ln -s usr/lib "$root/lib"
get "$gen2" /etc/hostname "$root/kernel/x86/microcode/AuthenticAMD.bin"
newc() { (cd "$root" && find "$@" | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible 2>/dev/null \
    || find "$@" | LC_ALL=C sort | cpio -o -H newc --quiet); }
newc etc init lib usr scripts > "$tmp/main.cpio"
newc kernel > "$tmp/early.cpio"
out=$(seeds initramfs)
cp "$tmp/main.cpio" "$out/newc"
gzip -9n < "$tmp/main.cpio" > "$out/newc.gz"
zstd -q -19 < "$tmp/main.cpio" > "$out/newc.zst"
xz --check=crc32 < "$tmp/main.cpio" > "$out/newc.xz"
lz4 -q -l -9 < "$tmp/main.cpio" > "$out/newc.lz4"
bzip2 -9 < "$tmp/main.cpio" > "$out/newc.bz2"
cat "$tmp/early.cpio" "$out/newc.zst" > "$out/early-microcode+zstd"
cat "$tmp/early.cpio" "$out/newc.gz" "$out/newc.xz" > "$out/early+gzip+xz"
get "$gen2" /boot/initrd.img-$v "$tmp/initrd"
head -c 1024 "$tmp/initrd" > "$out/debian-initrd-first-1k"
head -c 32768 "$tmp/initrd" > "$out/debian-initrd-first-32k"
out=$(seeds cpio)
# The first byte sets the feed size (byte + 1).
{ printf '\x00'; cat "$tmp/main.cpio"; } > "$out/newc-step-1"
{ printf '\x6d'; cat "$tmp/main.cpio"; } > "$out/newc-step-110"
{ printf '\xff'; cat "$tmp/early.cpio" "$tmp/main.cpio"; } > "$out/early+main-step-256"

# --- pe and authenticode
# cut_pe IN OUT SIG: OUT = the first 4 KiB of IN + its certificate table (directory entry
# moved to match); SIG = the first WIN_CERTIFICATE's PKCS#7 bytes.
cut_pe() {
    python3 - "$@" <<'PY'
import struct, sys
src, out, sig = sys.argv[1:4]
b = open(src, "rb").read()
pe = struct.unpack_from("<I", b, 0x3C)[0]
opt = pe + 24
magic = struct.unpack_from("<H", b, opt)[0]
dirs = opt + (96 if magic == 0x10B else 112)
entry = dirs + 4 * 8  # IMAGE_DIRECTORY_ENTRY_SECURITY
off, size = struct.unpack_from("<II", b, entry)
assert size > 0, f"{src}: not signed"
head = bytearray(b[:4096])
struct.pack_into("<II", head, entry, len(head), size)
open(out, "wb").write(bytes(head) + b[off:off + size])
length = struct.unpack_from("<I", b, off)[0]
open(sig, "wb").write(b[off + 8:off + length])
PY
}
pe=$(seeds pe); sig=$(seeds authenticode)
for f in /EFI/BOOT/BOOTX64.EFI /EFI/debian/grubx64.efi /EFI/debian/mmx64.efi /EFI/debian/fbx64.efi; do
    mcopy -n -i "$cache/gen2-gpt-ext4.raw@@1048576" "::$f" "$tmp/efi"
    n=$(basename "$f" | tr 'A-Z' 'a-z')
    cut_pe "$tmp/efi" "$pe/$n" "$sig/$n.p7"
done
for f in /EFI/BOOT/BOOTAA64.EFI /EFI/debian/grubaa64.efi; do
    mcopy -n -i "$cache/arm64-gpt-ext4.raw@@1048576" "::$f" "$tmp/efi"
    n=$(basename "$f" | tr 'A-Z' 'a-z')
    cut_pe "$tmp/efi" "$pe/$n" "$sig/$n.p7"
done

# --- shim_chain: the fixture's real BOOTX64.CSV (Debian's shim-unsigned: UCS-2LE, no BOM),
# the same line with a BOM as Fedora/RHEL ship it, SUSE's `iconv -t ucs2` short form, and
# 8 KiB of the real shim around its UTF-16 loader names (DEFAULT_LOADER, fallback, MokManager).
out=$(seeds shim_chain)
mcopy -n -i "$cache/gen2-gpt-ext4.raw@@1048576" "::/EFI/debian/BOOTX64.CSV" "$out/debian-BOOTX64.CSV"
{ printf '\xff\xfe'; echo "shimx64.efi,Red Hat Enterprise Linux,,This is the boot entry for Red Hat Enterprise Linux" | iconv -t UCS-2LE; } > "$out/redhat-BOOTX64.CSV"
echo "shim.efi,sles-secureboot" | iconv -f ascii -t ucs2 > "$out/sles-boot.csv"
mcopy -n -i "$cache/gen2-gpt-ext4.raw@@1048576" "::/EFI/BOOT/BOOTX64.EFI" "$tmp/efi"
python3 - "$tmp/efi" "$out/shimx64-strings" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
at = b.find("grubx64.efi".encode("utf-16-le"))
assert at > 0, "no UTF-16 grubx64.efi in shim"
open(sys.argv[2], "wb").write(b[max(0, at - 4096):at + 4096])
PY

# --- elf
out=$(seeds elf)
for f in /usr/bin/dpkg /usr/lib/x86_64-linux-gnu/libc.so.6; do
    get "$gen2" $f "$tmp/bin"; head -c 4096 "$tmp/bin" > "$out/amd64-$(basename $f)"
done
get "$gen2" /lib/modules/$v/kernel/drivers/hv/hv_balloon.ko "$tmp/bin"
head -c 4096 "$tmp/bin" > "$out/amd64-hv_balloon.ko"
get "$arm64" /usr/bin/dpkg "$tmp/bin"; head -c 4096 "$tmp/bin" > "$out/arm64-dpkg"

# --- grub_pc: LBA 0, then core.img as embedded (gen1: post-MBR gap from LBA 1; hybrid:
# LBA 0 followed directly by the BIOS boot partition's first sectors at LBA 2048).
out=$(seeds grub_pc)
head -c $((56 * 512)) "$cache/gen1-mbr-ext4.raw" > "$out/gen1-mbr-ext4"
{ head -c 512 "$cache/hybrid-gpt.raw"; dd if="$cache/hybrid-gpt.raw" bs=512 skip=2048 count=55 status=none; } \
    > "$out/hybrid-gpt-bios-boot"
head -c 512 "$cache/gen2-gpt-ext4.raw" > "$out/gen2-protective-mbr"
