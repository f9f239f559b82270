#!/usr/bin/env bash
# Seeds for the vhdx target (crates/fuzz/src/container.rs): whole VHDX files written by
# qemu-img/qemu-io, in the sparse format, each under 128 KiB:
#   qemu-written.vhdx    dynamic, 1 MiB blocks, data in three blocks;
#   qemu-fixed.vhdx      fixed, 1 MiB blocks;
#   qemu-dirty-log.vhdx  qemu-io killed (SIGKILL, LD_PRELOAD shim) after writing a BAT update
#                        to the log and before writing it in place: a log to replay;
#   lss4096.vhdx         qemu-img file with its logical sector size item set to 4096;
#   differencing.vhdx    qemu-img file made a differencing disk from the specification
#                        (has-parent flag, parent locator, a partially present block with its
#                        sector bitmap).
# Usage: fuzz/make-seeds/vhdx.sh (writes into fuzz/seeds/vhdx/; run from anywhere)
# Needs qemu-img, qemu-io, gcc, python3.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sparse="$here/make-seeds/sparse.py"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for tool in qemu-img qemu-io gcc python3; do
    command -v "$tool" >/dev/null || { echo "vhdx.sh: $tool is missing" >&2; exit 1; }
done
out="$here/seeds/vhdx"; mkdir -p "$out"
io() { qemu-io -f vhdx "${@:2}" "$1" >/dev/null; }

qemu-img create -q -f vhdx -o block_size=1M "$tmp/written.vhdx" 8M
io "$tmp/written.vhdx" -c "write -P 0xab 0 4k" -c "write -P 0xcd 3M 512" -c "write -P 0x11 8191k 1k"
qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M "$tmp/fixed.vhdx" 4M
io "$tmp/fixed.vhdx" -c "write -P 0x22 1M 4k"

# The kill shim: SIGKILL on the pwrite at $KILL_AT_PWRITE_OFFSET (the BAT's first sector).
cat > "$tmp/shim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/types.h>
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  const char *e = getenv("KILL_AT_PWRITE_OFFSET");
  if (e && (long long)off == atoll(e)) kill(getpid(), SIGKILL);
  if (!real) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
  return real(fd, buf, n, off);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return pwrite64(fd, buf, n, off); }
C
gcc -shared -fPIC -O2 -o "$tmp/shim.so" "$tmp/shim.c" -ldl
qemu-img create -q -f vhdx -o block_size=1M "$tmp/dirty.vhdx" 8M
io "$tmp/dirty.vhdx" -c "write -P 0x33 0 4k"
# qemu-img puts the BAT at 2 MiB in a file this small.
if KILL_AT_PWRITE_OFFSET=$((2 << 20)) LD_PRELOAD="$tmp/shim.so" \
    qemu-io -f vhdx -c "write -P 0x55 5M 4k" "$tmp/dirty.vhdx" >/dev/null 2>&1; then
    echo "vhdx.sh: qemu-io was not killed" >&2; exit 1
fi
if qemu-img info "$tmp/dirty.vhdx" >/dev/null 2>&1; then
    echo "vhdx.sh: no log to replay in dirty.vhdx" >&2; exit 1
fi

python3 - "$tmp" <<'PY'
import struct, sys, uuid
tmp = sys.argv[1]
LSS = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
FP = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
PL = uuid.UUID("A8D35F2B-B30B-454D-ABF7-D3D84834AB0C").bytes_le
PL_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913").bytes_le
MB = 1 << 20

def items(f):
    # qemu-img puts the metadata region at 2 MiB... find it from the region table instead.
    f.seek(192 * 1024 + 16)
    meta = None
    for i in range(2):
        e = f.read(32)
        if e[:16] == uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le:
            meta = struct.unpack("<Q", e[16:24])[0]
        if e[:16] == uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le:
            bat = struct.unpack("<Q", e[16:24])[0]
    f.seek(meta)
    t = f.read(65536)
    count = struct.unpack("<H", t[10:12])[0]
    found = {}
    for i in range(count):
        e = t[32 + 32 * i:64 + 32 * i]
        found[e[:16]] = (meta + struct.unpack("<I", e[16:20])[0], struct.unpack("<I", e[20:24])[0])
    return meta, bat, count, found

import shutil
shutil.copy(f"{tmp}/written.vhdx", f"{tmp}/lss4096.vhdx")
with open(f"{tmp}/lss4096.vhdx", "r+b") as f:
    _, _, _, found = items(f)
    f.seek(found[LSS][0]); f.write(struct.pack("<I", 4096))

shutil.copy(f"{tmp}/written.vhdx", f"{tmp}/differencing.vhdx")
with open(f"{tmp}/differencing.vhdx", "r+b") as f:
    meta, bat, count, found = items(f)
    f.seek(found[FP][0] + 4); flags = struct.unpack("<I", f.read(4))[0]
    f.seek(found[FP][0] + 4); f.write(struct.pack("<I", flags | 2))
    pairs = [("parent_linkage", "{00000000-0000-0000-0000-000000000000}"),
             ("relative_path", ".\\parent.vhdx"), ("absolute_win32_path", "C:\\parent.vhdx")]
    loc = bytearray(PL_TYPE + struct.pack("<HH", 0, len(pairs)) + bytes(12 * len(pairs)))
    for i, (k, v) in enumerate(pairs):
        k, v = k.encode("utf-16-le"), v.encode("utf-16-le")
        ko = len(loc); loc += k; vo = len(loc); loc += v
        loc[20 + 12 * i:32 + 12 * i] = struct.pack("<IIHH", ko, vo, len(k), len(v))
    end = max(o + l for o, l in found.values()) - meta
    off = (end + 4095) // 4096 * 4096
    f.seek(meta + off); f.write(loc)
    f.seek(meta + 32 + 32 * count); f.write(PL + struct.pack("<IIII", off, len(loc), 4, 0))
    f.seek(meta + 10); f.write(struct.pack("<H", count + 1))
    # Block 0 partially present; the chunk's sector bitmap (BAT index 4096) at the next MiB.
    f.seek(bat); e0 = struct.unpack("<Q", f.read(8))[0]
    f.seek(bat); f.write(struct.pack("<Q", (e0 & ~7) | 7))
    f.seek(0, 2); sb = (f.tell() + MB - 1) // MB * MB
    f.truncate(sb + MB)
    f.seek(sb); f.write(bytes([0x0F, 0, 0xFF]))
    f.seek(bat + 8 * 4096); f.write(struct.pack("<Q", (sb // MB) << 20 | 6))
PY

python3 "$sparse" "$tmp/written.vhdx" "$out/qemu-written.vhdx" --max 131072
python3 "$sparse" "$tmp/fixed.vhdx" "$out/qemu-fixed.vhdx" --max 131072
python3 "$sparse" "$tmp/dirty.vhdx" "$out/qemu-dirty-log.vhdx" --max 131072
python3 "$sparse" "$tmp/lss4096.vhdx" "$out/lss4096.vhdx" --max 131072
python3 "$sparse" "$tmp/differencing.vhdx" "$out/differencing.vhdx" --max 131072
