#!/usr/bin/env bash
# Seeds for the container targets: head and tail slices of images written by qemu-img.
# Usage: fuzz/make-seeds/container.sh (writes into fuzz/seeds/; run from anywhere)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
out="$here/seeds/container_detect"; mkdir -p "$out"

# First and last 512 bytes: all that detection reads.
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
