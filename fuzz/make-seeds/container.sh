#!/usr/bin/env bash
# Seeds for the container targets (crates/fuzz/src/container.rs):
#   container_detect  head and tail slices of images written by qemu-img;
#   vhd_dynamic       whole VHD files written by qemu-img/qemu-io, in the sparse format;
#   qcow2             whole qcow2 files written by qemu-img/qemu-io, in the sparse format;
#   vmdk              whole VMDK files (sparse, stream-optimized, zeroed grains, a delta,
#                     descriptor files) written by qemu-img/qemu-io, in the sparse format;
#   ova               OVAs made by GNU tar (ustar, pax, gnu) around a stream-optimized VMDK;
#   partition_table   disks partitioned by sgdisk/sfdisk and the fixture images' tables, in the
#                     sparse format (the first 34 and last 33 sectors, zero blocks dropped).
# Usage: fuzz/make-seeds/container.sh (writes into fuzz/seeds/; run from anywhere)
# Needs qemu-img, qemu-io, sgdisk, sfdisk, python3, cryptsetup, gzip, xz, zstd, bzip2, tar; the
# fixture images are used when present (VHDPREP_FIXTURE_CACHE, default
# /var/cache/vhdprep-fixtures).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sparse="$here/make-seeds/sparse.py"
fixtures=${VHDPREP_FIXTURE_CACHE:-/var/cache/vhdprep-fixtures}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for tool in qemu-img qemu-io sgdisk sfdisk python3 cryptsetup gzip xz zstd bzip2 tar; do
    command -v "$tool" >/dev/null || { echo "container.sh: $tool is missing" >&2; exit 1; }
done

# --- container_detect: first and last 512 bytes (what the VHD probe reads; the others read
# within the first 64 KiB, or where a header points), and whole small files.
out="$here/seeds/container_detect"; mkdir -p "$out"
head_tail() { { head -c 512 "$1"; tail -c 512 "$1"; } > "$2"; }
qemu-img create -q -f vpc -o subformat=fixed "$tmp/fixed.vhd" 1M
qemu-img create -q -f vpc "$tmp/dynamic.vhd" 64M
qemu-img create -q -f vhdx "$tmp/disk.vhdx" 64M
qemu-img create -q -f qcow2 "$tmp/disk.qcow2" 64M
qemu-img create -q -f vmdk "$tmp/disk.vmdk" 64M
head_tail "$tmp/fixed.vhd" "$out/qemu-fixed.vhd"
head_tail "$tmp/dynamic.vhd" "$out/qemu-dynamic.vhd"
head_tail "$tmp/disk.vhdx" "$out/qemu.vhdx"
head_tail "$tmp/disk.qcow2" "$out/qemu.qcow2"
head_tail "$tmp/disk.vmdk" "$out/qemu.vmdk"
# The other containers qemu-img writes, encrypted ones included (10 ms key derivation).
echo -n 'fuzz passphrase' > "$tmp/pass"
secret="secret,id=s0,file=$tmp/pass"
for f in vdi qed qcow parallels; do
    qemu-img create -q -f "$f" "$tmp/disk.$f" 64M
    head_tail "$tmp/disk.$f" "$out/qemu.$f"
done
qemu-img create -q --object "$secret" -f luks -o key-secret=s0,iter-time=10 "$tmp/disk.luks" 16M
qemu-img create -q --object "$secret" -f qcow2 \
    -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 "$tmp/luks.qcow2" 64M
qemu-img create -q --object "$secret" -f qcow2 -o encrypt.format=aes,encrypt.key-secret=s0 \
    "$tmp/aes.qcow2" 64M
qemu-img create -q -f vmdk -o subformat=monolithicFlat "$tmp/flat.vmdk" 16M
head_tail "$tmp/disk.luks" "$out/qemu.luks"
head_tail "$tmp/luks.qcow2" "$out/qemu-luks.qcow2"
head_tail "$tmp/aes.qcow2" "$out/qemu-aes.qcow2"
cp "$tmp/flat.vmdk" "$out/qemu-descriptor.vmdk"
# LUKS2 from cryptsetup: the primary header, and the secondary one at 16 KiB on its own.
truncate -s 20M "$tmp/c.luks2"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file "$tmp/pass" "$tmp/c.luks2"
head -c 512 "$tmp/c.luks2" > "$out/cryptsetup.luks2"
{ head -c 16384 /dev/zero; dd if="$tmp/c.luks2" bs=512 skip=32 count=1 status=none; } \
    > "$out/cryptsetup-secondary.luks2"
# Formats qemu-img reads but cannot write, crafted as tests/container_probes.rs crafts them.
python3 - "$out" <<'PY'
import struct, sys
out = sys.argv[1]
def write(name, data): open(f"{out}/{name}", "wb").write(data)
h = bytearray(512)
h[0:22] = b"Bochs Virtual HD Image"; h[32:39] = b"Redolog"; h[48:55] = b"Growing"
struct.pack_into("<IIIIIIQ", h, 64, 0x20000, 512, 16, 512, 65536, 0, 1 << 20)
write("crafted.bochs", bytes(h) + b"\xff" * 64)
pre = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
write("crafted.cloop", pre.ljust(128, b"\0") + struct.pack(">IIQ", 65536, 0, 144))
koly = bytearray(512); koly[0:4] = b"koly"; struct.pack_into(">II", koly, 4, 4, 512)
write("crafted.dmg", bytes(512) + bytes(koly))
bl = bytearray(1024); bl[0:11] = b"\xeb\x58\x90-FVE-FS-"; bl[510:512] = b"\x55\xaa"
write("crafted-bitlocker.img", bytes(bl))
tg = bytearray(1024); tg[0:11] = b"\xeb\x58\x90MSWIN4.1"; struct.pack_into("<Q", tg, 440, 512)
tg[512:520] = b"-FVE-FS-"
write("crafted-bitlocker-togo.img", bytes(tg))
PY
# Compressed streams and a tar archive of a small file.
head -c 4096 /dev/urandom > "$tmp/small.raw"
gzip -k "$tmp/small.raw" && xz -k "$tmp/small.raw" && zstd -q "$tmp/small.raw" && bzip2 -k "$tmp/small.raw"
for ext in gz xz zst bz2; do head -c 512 "$tmp/small.raw.$ext" > "$out/small.raw.$ext"; done
tar -cf "$tmp/small.tar" -C "$tmp" small.raw && head -c 1024 "$tmp/small.tar" > "$out/small.tar"

# --- vhd_dynamic: whole files (footer copy, dynamic header, BAT, bitmaps, data, footer).
out="$here/seeds/vhd_dynamic"; mkdir -p "$out"
write() { qemu-io -f vpc "${@:2}" "$1" >/dev/null; }
qemu-img create -q -f vpc "$tmp/empty.vhd" 8M
qemu-img create -q -f vpc "$tmp/written.vhd" 8M
# Two blocks: one partly written (sparse sector bitmap), one written at its last sector.
write "$tmp/written.vhd" -c "write -P 0xab 0 4k" -c "write -P 0xcd 1536k 512" \
    -c "write -P 0x5a 6143k 1k" -c "write -P 0x11 8191k 1k"
qemu-img create -q -f vpc -o force_size=on "$tmp/forced.vhd" 10M
write "$tmp/forced.vhd" -c "write -P 0x77 2M 8k"
# A tiny raw with a partition table, converted: what `qemu-img convert` uploads look like.
truncate -s 6M "$tmp/tiny.raw"
printf 'label: dos\nstart=2048, size=4096, type=83\n' | sfdisk -q "$tmp/tiny.raw"
printf 'hello from the first partition' | dd of="$tmp/tiny.raw" bs=1 seek=$((2048 * 512)) conv=notrunc status=none
qemu-img convert -f raw -O vpc "$tmp/tiny.raw" "$tmp/converted.vhd"
qemu-img convert -f raw -O vpc -o subformat=fixed "$tmp/tiny.raw" "$tmp/converted-fixed.vhd"
# The end footer lost: only the copy at offset 0 remains.
head -c -512 "$tmp/written.vhd" > "$tmp/start-copy.vhd"
for f in empty written forced converted converted-fixed start-copy; do
    python3 "$sparse" "$tmp/$f.vhd" "$out/qemu-$f.vhd" --max 65536
done

# --- qcow2: whole files written by qemu-img/qemu-io (header, extensions, L1/L2, refcounts,
# snapshot table, data, compressed clusters), small clusters to keep the seeds small.
out="$here/seeds/qcow2"; mkdir -p "$out"
qio() { qemu-io -f qcow2 "${@:2}" "$1" >/dev/null; }
qwrites=(-c "write -P 0xab 0 4k" -c "write -P 0xcd 70000 3000" -c "write -z 1M 64k"
         -c "write -P 0x11 8388096 512")
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k "$tmp/v2.qcow2" 8M
qio "$tmp/v2.qcow2" "${qwrites[@]}"
qemu-img create -q -f qcow2 -o cluster_size=512 "$tmp/c512.qcow2" 8M
qio "$tmp/c512.qcow2" "${qwrites[@]}"
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16k "$tmp/extl2.qcow2" 8M
qio "$tmp/extl2.qcow2" "${qwrites[@]}"
# Compressed clusters of text, zlib and zstd.
truncate -s 1M "$tmp/text.raw"
seq 1 40000 > "$tmp/seq.txt"
head -c 100000 "$tmp/seq.txt" | dd of="$tmp/text.raw" conv=notrunc status=none
qemu-img convert -q -c -O qcow2 -o cluster_size=4k "$tmp/text.raw" "$tmp/zlib.qcow2"
qemu-img convert -q -c -O qcow2 -o cluster_size=4k,compression_type=zstd "$tmp/text.raw" "$tmp/zstd.qcow2"
# A child over a backing file (named in the header, with its format), and a snapshot.
qemu-img create -q -f qcow2 -b v2.qcow2 -F qcow2 -o cluster_size=4k "$tmp/child.qcow2"
qio "$tmp/child.qcow2" -c "write -P 0x22 2k 1k" -c "write -z 0 4k"
qemu-img create -q -f qcow2 -o cluster_size=4k "$tmp/snap.qcow2" 8M
qio "$tmp/snap.qcow2" "${qwrites[@]}"
qemu-img snapshot -c before "$tmp/snap.qcow2"
qio "$tmp/snap.qcow2" -c "write -P 0x33 0 8k"
for f in v2 c512 extl2 zlib zstd child snap; do
    python3 "$sparse" "$tmp/$f.qcow2" "$out/qemu-$f.qcow2" --max 65536
done

# --- partition_table: the first 34 and the last 33 sectors (the GPT backup) of each disk.
out="$here/seeds/partition_table"; mkdir -p "$out"
table() { # DISK OUT [SECTOR-SIZE]
    local ss=${3:-512} size
    size=$(stat -c %s "$1")
    python3 "$sparse" "$1" "$2" --keep 0:$((34 * ss)) --keep $((size - 33 * ss)):$((33 * ss)) --max 65536
    [ "$(stat -c %s "$2")" -gt 1024 ] || { echo "container.sh: no table written to $2" >&2; exit 1; }
}
new() { rm -f "$tmp/d"; truncate -s "$1" "$tmp/d"; }
new 64M
sgdisk -n 1:2048:+1M -t 1:ef02 -n 2:0:+8M -t 2:ef00 -c 2:ESP -n 3:0:0 -t 3:8300 -c 3:root "$tmp/d" >/dev/null
table "$tmp/d" "$out/sgdisk-gpt"
sgdisk -h 2:3 "$tmp/d" >/dev/null
table "$tmp/d" "$out/sgdisk-hybrid"
new 64M
printf 'label: dos\nlabel-id: 0x12345678\nstart=2048, size=8192, type=83, bootable\nstart=10240, type=5\nstart=12288, size=4096, type=83\nstart=18432, size=4096, type=82\nstart=24576, type=8e\n' \
    | sfdisk -q "$tmp/d"
# The EBR chain lies inside the disk: keep every non-zero block.
python3 "$sparse" "$tmp/d" "$out/sfdisk-mbr-logicals" --max 65536
new 64M
printf 'label: gpt\nfirst-lba: 34\nstart=2048, size=4096, type=21686148-6449-6E6F-744E-656564454649\nstart=6144, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System"\nstart=22528, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, attrs="LegacyBIOSBootable"\n' \
    | sfdisk -q "$tmp/d"
table "$tmp/d" "$out/sfdisk-gpt"
# 4096-byte sectors: sfdisk and sgdisk take the size from a block device, so write it here.
new 64M
python3 - "$tmp/d" <<'PY'
import struct, sys, uuid, zlib
ss, path = 4096, sys.argv[1]
last = 64 * 2**20 // ss - 1
def guid(s): return uuid.UUID(s).bytes_le
entries = bytearray(128 * 128)
parts = [("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", 256, 2303, "EFI System"),
         ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", 2304, last - 6, "root")]
for i, (t, first, end, name) in enumerate(parts):
    entries[i * 128:(i + 1) * 128] = (guid(t) + uuid.UUID(int=i + 1).bytes_le
        + struct.pack("<QQQ", first, end, 0) + name.encode("utf-16-le").ljust(72, b"\0"))
def header(lba, alt, array_lba):
    h = bytearray(b"EFI PART" + struct.pack("<IIII", 0x10000, 92, 0, 0)
        + struct.pack("<QQQQ", lba, alt, 6, last - 5) + uuid.UUID(int=42).bytes_le
        + struct.pack("<QIII", array_lba, 128, 128, zlib.crc32(entries)))
    h[16:20] = struct.pack("<I", zlib.crc32(h))
    return bytes(h)
with open(path, "r+b") as f:
    mbr = bytearray(512)
    mbr[446:462] = bytes([0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF]) + struct.pack("<II", 1, last)
    mbr[510:512] = b"\x55\xaa"
    f.write(mbr)
    for at, data in ((ss, header(1, last, 2)), (2 * ss, entries),
                     ((last - 4) * ss, entries), (last * ss, header(last, 1, last - 4))):
        f.seek(at); f.write(data)
PY
table "$tmp/d" "$out/crafted-gpt-4k" 4096
for f in gen2-gpt-ext4 gen1-mbr-ext4 hybrid-gpt rhel-lvm; do
    [ -f "$fixtures/$f.raw" ] || { echo "container.sh: no fixture $fixtures/$f.raw" >&2; exit 1; }
    table "$fixtures/$f.raw" "$out/fixture-$f"
done

# --- vmdk: whole files in the sparse format (header, descriptor, GD, GTs, grains).
out="$here/seeds/vmdk"; mkdir -p "$out"
vwrite() { qemu-io -f vmdk "${@:2}" "$1" >/dev/null; }
truncate -s 8M "$tmp/v.raw"
printf 'vhdprep vmdk seed' | dd of="$tmp/v.raw" bs=1 seek=70000 conv=notrunc status=none
head -c 3000 /usr/share/common-licenses/GPL-3 | dd of="$tmp/v.raw" bs=1 seek=$((5 << 20)) conv=notrunc status=none
for sub in monolithicSparse streamOptimized twoGbMaxExtentSparse monolithicFlat; do
    qemu-img convert -q -f raw -O vmdk -o subformat=$sub "$tmp/v.raw" "$tmp/$sub.vmdk"
done
qemu-img convert -q -f raw -O vmdk -o zeroed_grain=on "$tmp/v.raw" "$tmp/zeroed.vmdk"
vwrite "$tmp/zeroed.vmdk" -c "write -z 64k 64k"
(cd "$tmp" && qemu-img create -q -f vmdk -b monolithicSparse.vmdk -F vmdk delta.vmdk)
vwrite "$tmp/delta.vmdk" -c "write -P 0x5a 1M 4k"
for f in monolithicSparse streamOptimized zeroed delta twoGbMaxExtentSparse-s001; do
    python3 "$sparse" "$tmp/$f.vmdk" "$out/qemu-$f.vmdk" --max 65536
done
# Descriptor files: their extents are the input again.
for f in twoGbMaxExtentSparse monolithicFlat; do
    python3 "$sparse" "$tmp/$f.vmdk" "$out/qemu-$f-descriptor.vmdk" --max 65536
done

# --- ova: whole archives (not sparse: tar headers are dense).
out="$here/seeds/ova"; mkdir -p "$out"
truncate -s 1M "$tmp/o.raw"
printf 'vhdprep ova seed' | dd of="$tmp/o.raw" bs=1 seek=4096 conv=notrunc status=none
mkdir -p "$tmp/ova"
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$tmp/o.raw" "$tmp/ova/x-disk1.vmdk"
cat > "$tmp/ova/x.ovf" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="x-disk1.vmdk" ovf:id="file1" ovf:size="$(stat -c %s "$tmp/ova/x-disk1.vmdk")"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
</Envelope>
XML
for format in ustar pax gnu; do
    (cd "$tmp/ova" && tar --format=$format -cf "$out/tar-$format.ova" x.ovf x-disk1.vmdk)
done
