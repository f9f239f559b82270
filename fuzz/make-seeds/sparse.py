#!/usr/bin/env python3
"""Writes a fuzz seed in the sparse input format of crates/fuzz/src/container.rs:

    input = size:u64le chunk*
    chunk = offset:u64le len:u32le bytes[len]

Usage: sparse.py IMAGE OUT [--window OFFSET:SIZE] [--keep START:LEN]... [--drop START:LEN]...
                           [--max BYTES]

The volume is IMAGE, or its window [OFFSET, OFFSET+SIZE) (a partition of a disk image). Only
its non-zero 4 KiB blocks are kept (holes are skipped without reading them), merged into one
chunk per run; --keep limits them to the given ranges of the volume, --drop leaves ranges out
(a filesystem log the readers never look at). Fails if the seed would exceed --max bytes
(default 256 KiB), so that a seed never silently grows past what a fuzzer run should load.
--budget instead keeps blocks in offset order while the seed stays under BYTES: the start of a
big real filesystem (superblock, first allocation group, root directory) without the rest.
"""
import argparse
import os
import struct
import sys

BLOCK = 4096


def ranges(arg_list):
    out = []
    for a in arg_list or []:
        start, length = a.split(":")
        out.append((int(start, 0), int(length, 0)))
    return out


def data_runs(fd, start, end):
    """(offset, length) runs of [start, end) that may hold data, per SEEK_DATA/SEEK_HOLE."""
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole - data
        pos = hole


def main():
    p = argparse.ArgumentParser()
    p.add_argument("image")
    p.add_argument("out")
    p.add_argument("--window")
    p.add_argument("--keep", action="append")
    p.add_argument("--drop", action="append")
    p.add_argument("--max", type=lambda s: int(s, 0), default=256 * 1024)
    p.add_argument("--budget", type=lambda s: int(s, 0))
    a = p.parse_args()
    fd = os.open(a.image, os.O_RDONLY)
    size = os.fstat(fd).st_size
    base, vol_size = (0, size)
    if a.window:
        base, vol_size = ranges([a.window])[0]
    keep = ranges(a.keep) or [(0, vol_size)]
    drop = ranges(a.drop)

    def wanted(off):
        """Whether the block at volume offset `off` overlaps a kept range and starts outside
        every dropped one."""
        return any(s < off + BLOCK and off < s + n for s, n in keep) and not any(
            s <= off < s + n for s, n in drop
        )

    chunks = []  # [offset, bytearray]
    used = 8
    for s, n in keep:
        start = base + (s // BLOCK) * BLOCK
        for run_at, run_len in data_runs(fd, start, base + min(s + n, vol_size)):
            at = (run_at // BLOCK) * BLOCK
            while at < run_at + run_len:
                block = os.pread(fd, BLOCK, at)
                off = at - base
                at += BLOCK
                if not block.strip(b"\0") or not wanted(off):
                    continue
                used += BLOCK + 12
                if a.budget and used > a.budget:
                    break
                if chunks and chunks[-1][0] + len(chunks[-1][1]) == off:
                    chunks[-1][1] += block
                else:
                    chunks.append([off, bytearray(block)])
    out = bytearray(struct.pack("<Q", vol_size))
    for off, data in chunks:
        out += struct.pack("<QI", off, len(data)) + data
    if len(out) > a.max:
        sys.exit(f"sparse.py: {a.out} would be {len(out)} bytes, more than --max {a.max}")
    with open(a.out, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
