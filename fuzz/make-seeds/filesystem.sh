#!/usr/bin/env bash
# Seeds for the filesystem targets (crates/fuzz/src/filesystem.rs):
#   fs_probe      the first KiB (as many as the prober reads) of volumes made by mkfs.*, mkswap, cryptsetup, mksquashfs,
#                 mkntfs, xorriso, and of the fixtures' LVM PV;
#   ext4 fat xfs btrfs
#                 small real filesystems populated from one tree (files, directories, short
#                 and long symlinks, a directory of 30 long names (6 KiB) for the hashed/btree
#                 directory formats, a file with holes), in the sparse format (non-zero 4 KiB
#                 blocks only), plus the start of the fixtures' root filesystems;
#   lvm_metadata  the metadata text of the fixture's volume group, and a hand-written one;
#   lvm_pv        the fixture's PV (label, metadata area, start of its logical volumes).
# Usage: fuzz/make-seeds/filesystem.sh (writes into fuzz/seeds/; run from anywhere)
# Needs e2fsprogs, xfsprogs, btrfs-progs, dosfstools, mtools, util-linux, cryptsetup,
# squashfs-tools, ntfs-3g, xorriso, python3, and the fixture images (VHDPREP_FIXTURE_CACHE,
# default /var/cache/vhdprep-fixtures).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sparse="$here/make-seeds/sparse.py"
fixtures=${VHDPREP_FIXTURE_CACHE:-/var/cache/vhdprep-fixtures}
tmp=${FZ_TMP:-$(mktemp -d)}; [ -n "${FZ_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT
for tool in mkfs.ext4 mkfs.xfs mkfs.btrfs mkfs.vfat mcopy mmd mkswap cryptsetup \
    mksquashfs mkntfs xorriso python3; do
    command -v "$tool" >/dev/null || { echo "filesystem.sh: $tool is missing" >&2; exit 1; }
done
for f in gen2-gpt-ext4 gen2-gpt-xfs gen2-gpt-btrfs rhel-lvm; do
    [ -f "$fixtures/$f.raw" ] || { echo "filesystem.sh: no fixture $fixtures/$f.raw" >&2; exit 1; }
done
seeds() { mkdir -p "$here/seeds/$1"; echo "$here/seeds/$1"; }
# Offset and size of partition N of fixture F, from its manifest.
part() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=[p for p in d["partitions"] if p["number"]==int(sys.argv[2])][0]; print("%d:%d" % (p["start"], p["size"]))' \
        "$fixtures/$1.json" "$2"
}

# --- The tree every filesystem is populated from.
tree="$tmp/tree"
mkdir -p "$tree/etc/ssh" "$tree/usr/bin" "$tree/boot" "$tree/var/many" "$tree/home/u/.d"
printf 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n' > "$tree/etc/os-release"
printf 'UUID=1234 / ext4 defaults 0 1\n/dev/sda1 /boot/efi vfat umask=0077 0 1\n' > "$tree/etc/fstab"
printf 'Port 22\nPermitRootLogin no\n' > "$tree/etc/ssh/sshd_config"
echo fuzzhost > "$tree/etc/hostname"
printf '#!/bin/sh\necho hi\n' > "$tree/usr/bin/hello"; chmod 755 "$tree/usr/bin/hello"
python3 -c 'import sys; sys.stdout.write("".join("line %05d of a medium file\n" % i for i in range(150)))' \
    > "$tree/boot/config-6.1.0"
# A file with holes: six islands 64 KiB apart (several extents; more than four needs an ext4
# extent index block).
for i in $(seq 0 5); do
    printf 'island %d' "$i" | dd of="$tree/boot/sparse.img" bs=1 seek=$((i * 65536)) conv=notrunc status=none
done
# Hard links to one inode, so that the seeds hold the directory blocks and not 30 inodes
# (except on XFS, whose protofile has no hard links).
long=$(printf 'n%.0s' $(seq 1 200))
: > "$tree/var/many/first"
for i in $(seq 1 30); do ln "$tree/var/many/first" "$tree/var/many/$long-$i"; done
ln -s ../usr/bin/hello "$tree/etc/short-link"
ln -s /usr/share/a/very/long/target/path/that/does/not/fit/in/the/inode/itself/xxxxxxxxxxxxxxxx \
    "$tree/etc/long-link"
ln -s /etc/os-release "$tree/home/u/.d/abs-link"
mkfifo "$tree/home/u/fifo"

# --- ext4: mkfs.ext4 -d, with the default 4 KiB blocks, 1 KiB blocks, and as ext2.
out=$(seeds ext4)
mkext() { # NAME SIZE MKFS-ARGS...
    rm -f "$tmp/e"; truncate -s "$2" "$tmp/e"
    mkfs.ext4 -q -F -d "$tree" -L fuzz "${@:3}" "$tmp/e"
    # mkfs -d writes linear directories; e2fsck -D indexes the long one (htree).
    e2fsck -fyD "$tmp/e" >/dev/null || [ $? -le 1 ]
    python3 "$sparse" "$tmp/e" "$out/$1"
}
mkext mkfs-4k 8M -E nodiscard -O ^resize_inode
mkext mkfs-1k 8M -b 1024 -E nodiscard
mkext mkfs-ext2 8M -t ext2 -E nodiscard
mkext mkfs-inline 8M -O inline_data,^has_journal -E nodiscard
python3 "$sparse" "$fixtures/gen2-gpt-ext4.raw" "$out/fixture-root-start" \
    --window "$(part gen2-gpt-ext4 2)" --budget 120000

# --- FAT12/16/32: mkfs.vfat, then mtools copies the tree in (no symlinks or fifos on FAT).
out=$(seeds fat)
fattree="$tmp/fattree"; cp -a "$tree" "$fattree"; find "$fattree" \( -type l -o -type p \) -delete
# Shorter long names on FAT: every lookup rescans the directory, and 200-character names (16
# slots each) made one walk of the seed take seconds under the fuzzer.
rm -r "$fattree/var/many"; mkdir "$fattree/var/many"
for i in $(seq 1 30); do : > "$fattree/var/many/Long Name Entry $i.txt"; done
mkfat() { # NAME SIZE-KIB FAT-BITS TOP-DIRS...
    rm -f "$tmp/f"
    mkfs.vfat -C -F "$3" -n FUZZ "$tmp/f" "$2" >/dev/null
    MTOOLS_SKIP_CHECK=1 mcopy -s -i "$tmp/f" "${@:4}" ::/
    MTOOLS_SKIP_CHECK=1 mmd -i "$tmp/f" ::/EFI ::/EFI/BOOT
    printf 'MZ fake efi' | MTOOLS_SKIP_CHECK=1 mcopy -i "$tmp/f" - ::/EFI/BOOT/BOOTX64.EFI
    python3 "$sparse" "$tmp/f" "$out/$1"
}
mkfat mkfs-fat12 2048 12 "$fattree"/*
mkfat mkfs-fat16 16384 16 "$fattree"/*
mkfat mkfs-fat32 40960 32 "$fattree"/*
python3 "$sparse" "$fixtures/gen2-gpt-ext4.raw" "$out/fixture-esp" \
    --window "$(part gen2-gpt-ext4 1)" --budget 120000

# --- XFS: mkfs.xfs -p with a protofile made from the tree (300 MiB is the minimum size).
out=$(seeds xfs)
proto() { # DIR: the protofile body for the contents of DIR
    local e name
    for e in "$1"/* "$1"/.[!.]*; do
        [ -e "$e" ] || [ -L "$e" ] || continue
        name=$(basename "$e")
        if [ -L "$e" ]; then echo "$name l--777 0 0 $(readlink "$e")"
        elif [ -d "$e" ]; then echo "$name d--755 0 0"; proto "$e"; echo '$'
        elif [ -p "$e" ]; then echo "$name p--644 0 0"
        else echo "$name ---$(stat -c %a "$e") 0 0 $e"
        fi
    done
}
{ printf '/dev/null\n0 0\nd--755 0 0\n'; proto "$tree"; printf '$\n'; } > "$tmp/proto"
mkxfs() { # NAME MKFS-ARGS...
    rm -f "$tmp/x"; truncate -s 300M "$tmp/x"
    # Two allocation groups (the fewest mkfs allows): more would only add superblock copies.
    mkfs.xfs -q -f -L fuzz -d agcount=2 -p "$tmp/proto" "${@:2}" "$tmp/x"
    python3 "$sparse" "$tmp/x" "$out/$1"
}
mkxfs mkfs-v5
mkxfs mkfs-v5-nocrc-ftype -m crc=0
python3 "$sparse" "$fixtures/gen2-gpt-xfs.raw" "$out/fixture-root-start" \
    --window "$(part gen2-gpt-xfs 2)" --budget 120000

# --- btrfs: mkfs.btrfs --rootdir, single profiles and 4 KiB nodes to keep the seed small.
out=$(seeds btrfs)
mkbtrfs() { # NAME MKFS-ARGS...
    rm -f "$tmp/b"; truncate -s 128M "$tmp/b"
    mkfs.btrfs -q -f -L fuzz --rootdir "$tree" -m single -d single --nodesize 4096 "${@:2}" "$tmp/b"
    python3 "$sparse" "$tmp/b" "$out/$1"
}
mkbtrfs mkfs-single
mkbtrfs mkfs-holes -O ^no-holes -R ^free-space-tree
python3 "$sparse" "$fixtures/gen2-gpt-btrfs.raw" "$out/fixture-root-start" \
    --window "$(part gen2-gpt-btrfs 2)" --budget 120000

# --- fs_probe: the start of each kind of volume, as plain bytes: as far as its prober reads
# (btrfs: the superblock at 64 KiB; ISO9660/UDF: the descriptors from 32 KiB).
out=$(seeds fs_probe)
cut() { head -c "$3" "$1" > "$out/$2"; }
mkdir -p "$tmp/probe"
for k in ext4 xfs btrfs; do
    python3 - "$here/seeds/$k/mkfs-$(case $k in ext4) echo 4k;; xfs) echo v5;; *) echo single;; esac)" \
        "$tmp/probe/$k" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
vol = bytearray(72 * 1024)
i = 8
while i + 12 <= len(data):
    off, n = struct.unpack_from("<QI", data, i); i += 12
    chunk = data[i:i + n][:max(0, len(vol) - off)]; i += n
    vol[off:off + len(chunk)] = chunk
open(sys.argv[2], "wb").write(vol)
PY
done
cut "$tmp/probe/ext4" ext4 8192
cut "$tmp/probe/xfs" xfs 8192
cut "$tmp/probe/btrfs" btrfs $((68 * 1024))
for bits in 12 16 32; do
    rm -f "$tmp/f"; mkfs.vfat -C -F $bits -n PROBE "$tmp/f" $((bits == 32 ? 40960 : 16384)) >/dev/null
    cut "$tmp/f" "vfat$bits" 4096
done
rm -f "$tmp/s"; truncate -s 1M "$tmp/s"; mkswap -q -L swp "$tmp/s"; cut "$tmp/s" swap 4096
rm -f "$tmp/l"; truncate -s 20M "$tmp/l"
echo -n fuzzpassphrase | cryptsetup -q luksFormat --type luks2 --pbkdf pbkdf2 \
    --pbkdf-force-iterations 1000 --label fz "$tmp/l" -
cut "$tmp/l" luks2 $((32 * 1024))
rm -f "$tmp/l"; truncate -s 4M "$tmp/l"
echo -n fuzzpassphrase | cryptsetup -q luksFormat --type luks1 --pbkdf-force-iterations 1000 "$tmp/l" -
cut "$tmp/l" luks1 4096
mksquashfs "$tree" "$tmp/q" -quiet -no-progress -noappend >/dev/null; cut "$tmp/q" squashfs 4096
rm -f "$tmp/n"; truncate -s 8M "$tmp/n"; mkntfs -q -F -f -L fz "$tmp/n" >/dev/null 2>&1
cut "$tmp/n" ntfs 8192
xorriso -outdev "$tmp/iso" -volid FUZZ -map "$tree/etc" /etc >/dev/null 2>&1
cut "$tmp/iso" iso9660 $((40 * 1024))
lvm_at=$(part rhel-lvm 3)
dd if="$fixtures/rhel-lvm.raw" of="$out/lvm2-pv" bs=4096 skip=$((${lvm_at%:*} / 4096)) count=2 status=none

# --- lvm_pv: the fixture's PV: label, metadata area, and the first blocks of what follows.
out=$(seeds lvm_pv)
python3 "$sparse" "$fixtures/rhel-lvm.raw" "$out/fixture-pv" --window "$lvm_at" \
    --keep 0:1048576 --budget 120000

# --- lvm_metadata: the newest metadata text of the fixture's VG, and a hand-written one.
out=$(seeds lvm_metadata)
python3 - "$fixtures/rhel-lvm.raw" "${lvm_at%:*}" "$out/fixture-vg" <<'PY'
import sys
f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2])); area = f.read(1 << 20)
# Metadata texts are NUL-terminated in the circular buffer after the 512-byte mda header.
texts = [t for t in area[4096 + 512:].split(b"\0") if b"seqno" in t]
if not texts:
    sys.exit("filesystem.sh: no LVM metadata text in the fixture's PV")
newest = max(texts, key=lambda t: int(t.split(b"seqno = ")[1].split()[0]))
open(sys.argv[3], "wb").write(newest)
PY
cat > "$out/handwritten" <<'EOF'
# comment
vg0 {
	id = "abcdef-0123-4567-89ab-cdef-0123-456789"
	seqno = 7
	status = ["RESIZEABLE", "READ", "WRITE"]
	extent_size = 8192	# 4 Megabytes
	max_lv = 0
	physical_volumes {
		pv0 {
			id = "Rhel6P-Vu1d-0000-0000-0000-0000-fixtur"
			device = "/dev/sda3"
			dev_size = 5265375
			pe_start = 2048
			pe_count = 642
		}
	}
	logical_volumes {
		root {
			id = "x"
			status = ["READ", "WRITE", "VISIBLE"]
			tags = []
			segment_count = 2
			segment1 {
				start_extent = 0
				extent_count = 100
				type = "striped"
				stripe_count = 1
				stripes = [
					"pv0", 0
				]
			}
			segment2 {
				start_extent = 100
				extent_count = 10
				type = "striped"
				stripe_count = 2
				stripe_size = 128
				stripes = ["pv0", 200, "pv0", 300]
			}
		}
		escaped { id = "a\"b\\c" status = [] float = 1.5 neg = -9223372036854775808 }
	}
}
contents = "Text Format Volume Group"
version = 1
EOF
