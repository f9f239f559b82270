#!/usr/bin/env bash
# Seeds for the targets of crates/fuzz/src/vdi_and_chains.rs, in the sparse format:
#   vdi               VDI files written by qemu-img (dynamic, static, empty) and written to
#                     with qemu-io; one patched to VirtualBox's 400-byte header, one to a
#                     differencing image (type 4 with a parent's UUIDs);
#   vhd_differencing  differencing VHDs over a parent qemu-img writes. qemu-img cannot write
#                     them, so the children are built here from the VHD specification, as
#                     crates/disk/tests/vhd_differencing.rs builds them: footer copy, dynamic
#                     header with the parent's unique id, time stamp and name, W2ru/W2ku/MacX
#                     locators, BAT, blocks with partial sector bitmaps, footer.
# Usage: fuzz/make-seeds/vdi-and-chains.sh (writes into fuzz/seeds/; needs qemu-img, qemu-io,
# python3)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sparse="$here/make-seeds/sparse.py"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for tool in qemu-img qemu-io python3; do
    command -v "$tool" >/dev/null || { echo "vdi-and-chains.sh: $tool is missing" >&2; exit 1; }
done

# --- vdi
out="$here/seeds/vdi"; mkdir -p "$out"; rm -f "$out"/*
qemu-img create -q -f vdi "$tmp/empty.vdi" 8M
qemu-img create -q -f vdi "$tmp/written.vdi" 8M
qemu-io -f vdi -c "write -P 0xab 0 4k" -c "write -P 0xcd 3M 512" -c "write -P 0x11 8191k 1k" \
    "$tmp/written.vdi" >/dev/null
qemu-img create -q -f vdi -o static=on "$tmp/static.vdi" 3M
qemu-io -f vdi -c "write -P 0x5a 1M 8k" "$tmp/static.vdi" >/dev/null
# VirtualBox's header variant: 400-byte header with LCHS geometry, Oracle's text.
cp "$tmp/written.vdi" "$tmp/vbox.vdi"
python3 - "$tmp/vbox.vdi" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.write(b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(64, b"\0"))
    f.seek(72); f.write(struct.pack("<I", 400))
    f.seek(456); f.write(struct.pack("<IIII", 16, 16, 63, 512))
PY
# A VirtualBox snapshot: type 4, link and parent-modification UUIDs of another image.
cp "$tmp/written.vdi" "$tmp/diff.vdi"
python3 - "$tmp/diff.vdi" "$tmp/static.vdi" <<'PY'
import struct, sys
uuids = open(sys.argv[2], "rb").read()[392:424]
with open(sys.argv[1], "r+b") as f:
    f.seek(76); f.write(struct.pack("<I", 4))
    f.seek(424); f.write(uuids)
PY
for f in empty written static vbox diff; do
    python3 "$sparse" "$tmp/$f.vdi" "$out/qemu-$f.vdi" --max 65536
done

# --- vhd_differencing
out="$here/seeds/vhd_differencing"; mkdir -p "$out"; rm -f "$out"/*
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$tmp/base.vhd" 8M
qemu-io -f vpc -c "write -P 0x42 0 1M" "$tmp/base.vhd" >/dev/null
child() { # PARENT OUT BLOCK_SIZE
python3 - "$@" <<'PY'
import struct, sys
parent, out, bs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(parent, "rb").read()
pf = bytearray(data[-512:])
size = struct.unpack(">Q", pf[48:56])[0]
blocks = -(-size // bs)
bitmap = -(-(bs // 512 // 8) // 512) * 512
def csum(b, skip):
    return (~sum(x for i, x in enumerate(b) if i not in skip)) & 0xFFFFFFFF
footer = bytearray(pf)
footer[16:24] = struct.pack(">Q", 512)
footer[28:32] = b"test"
footer[60:64] = struct.pack(">I", 4)
footer[68:84] = bytes([0x5e] * 16)
footer[64:68] = struct.pack(">I", csum(footer, range(64, 68)))
name = parent.rsplit("/", 1)[-1]
locs = [(b"W2ru", (".\\" + name).encode("utf-16-le")),
        (b"W2ku", ("C:\\vms\\" + name).encode("utf-16-le")),
        (b"MacX", ("file://localhost/srv/vms/" + name).encode())]
bat_at = 1536
at = bat_at + -(-(blocks * 4) // 512) * 512
h = bytearray(1024)
h[0:8] = b"cxsparse"; h[8:16] = b"\xff" * 8
h[16:24] = struct.pack(">Q", bat_at); h[24:28] = struct.pack(">I", 0x10000)
h[28:32] = struct.pack(">I", blocks); h[32:36] = struct.pack(">I", bs)
h[40:56] = pf[68:84]; h[56:60] = pf[24:28]
n = name.encode("utf-16-be"); h[64:64 + len(n)] = n
body = bytearray(at + 512 * len(locs))
for i, (code, text) in enumerate(locs):
    e = 576 + 24 * i
    h[e:e + 24] = code + struct.pack(">IIIQ", 512, len(text), 0, at + 512 * i)
    body[at + 512 * i:at + 512 * i + len(text)] = text
h[36:40] = struct.pack(">I", csum(h, range(36, 40)))
body[0:512] = footer; body[512:1536] = h
bat = [0xFFFFFFFF] * blocks
# Writes: two sectors in block 0, zeros over the parent's data in block 1, the last sector.
for off, payload in ((4096, b"\x99" * 1024), (bs, b"\0" * 2048), (size - 512, b"\x77" * 512)):
    for k in range(0, len(payload), 512):
        v = off + k; blk = v // bs
        if bat[blk] == 0xFFFFFFFF:
            bat[blk] = len(body) // 512
            body += bytearray(bitmap + bs)
        start = bat[blk] * 512; s = (v % bs) // 512
        body[start + s // 8] |= 0x80 >> (s % 8)
        d = start + bitmap + s * 512
        body[d:d + 512] = payload[k:k + 512]
for i, e in enumerate(bat):
    body[bat_at + 4 * i:bat_at + 4 * i + 4] = struct.pack(">I", e)
open(out, "wb").write(bytes(body + footer))
PY
}
child "$tmp/base.vhd" "$tmp/child-2m.vhd" $((2 << 20))
child "$tmp/base.vhd" "$tmp/child-512k.vhd" $((512 << 10))
child "$tmp/child-512k.vhd" "$tmp/grandchild.vhd" $((1 << 20))
for f in child-2m child-512k grandchild; do
    python3 "$sparse" "$tmp/$f.vhd" "$out/$f.vhd" --max 65536
done
