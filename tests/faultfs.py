#!/usr/bin/env python3
"""A FUSE filesystem that passes everything through to a backing directory, except the faults
it is told to inject: the device errors and late ENOSPC that a local filesystem cannot be made
to produce on demand (the kernel here has no device-mapper, so no `error` target either).

    faultfs.py BACKING MOUNTPOINT [--read-eio PART:OFFSET] [--write-eio PART:OFFSET]
                                  [--fsync-enospc PART]

--read-eio PART:OFFSET   a read that covers byte OFFSET of a file whose path (from the
                         mount point, starting with /) contains PART fails with EIO, as a
                         bad sector does (the bytes around it read as usual)
--write-eio PART:OFFSET  likewise for a write
--fsync-enospc PART      fsync of a file whose path contains PART fails with ENOSPC, as on
                         a filesystem that only allocates space at write-back (repeatable)

Runs in the foreground until unmounted (tests/writer_faults_fs.rs starts and stops it).
Every fault served is logged to standard error, so a test can tell that its fault was the one
met. Needs fusepy (pip) and libfuse2 (Debian); scripts/test.sh installs both.
"""

import argparse
import errno
import os
import sys

from fuse import FUSE, FuseOSError, Operations


def split_spec(spec):
    name, _, offset = spec.rpartition(":")
    return name, int(offset)


class FaultFs(Operations):
    def __init__(self, backing, read_eio, write_eio, fsync_enospc):
        self.root = os.path.realpath(backing)
        self.read_eio = read_eio
        self.write_eio = write_eio
        self.fsync_enospc = fsync_enospc

    def real(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def fault(self, what, path):
        print(f"faultfs: {what} {path}", file=sys.stderr, flush=True)

    # Metadata.
    def getattr(self, path, fh=None):
        st = os.lstat(self.real(path))
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                "st_size", "st_uid", "st_blocks")
        out = {k: getattr(st, k) for k in keys}
        for k in ("st_atime", "st_ctime", "st_mtime"):
            out[k] = getattr(st, k + "_ns") / 1e9
        return out

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self.real(path))

    def statfs(self, path):
        sv = os.statvfs(self.real(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                "f_files", "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(sv, k) for k in keys}

    def access(self, path, mode):
        if not os.access(self.real(path), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self.real(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self.real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self.real(path), times)

    # Names.
    def mkdir(self, path, mode):
        os.mkdir(self.real(path), mode)

    def rmdir(self, path):
        os.rmdir(self.real(path))

    def unlink(self, path):
        os.unlink(self.real(path))

    def rename(self, old, new):
        os.rename(self.real(old), self.real(new))

    def link(self, target, source):
        os.link(self.real(source), self.real(target))

    # Files.
    def open(self, path, flags):
        return os.open(self.real(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self.real(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)

    def truncate(self, path, length, fh=None):
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self.real(path), length)

    def read(self, path, size, offset, fh):
        if self.read_eio:
            part, at = self.read_eio
            if part in path and offset <= at < offset + size:
                self.fault(f"read EIO at {offset}+{size}", path)
                raise FuseOSError(errno.EIO)
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        if self.write_eio:
            part, at = self.write_eio
            if part in path and offset <= at < offset + len(data):
                self.fault(f"write EIO at {offset}+{len(data)}", path)
                raise FuseOSError(errno.EIO)
        return os.pwrite(fh, data, offset)

    def fsync(self, path, datasync, fh):
        if any(part in path for part in self.fsync_enospc):
            self.fault("fsync ENOSPC", path)
            raise FuseOSError(errno.ENOSPC)
        os.fsync(fh)
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("backing")
    ap.add_argument("mountpoint")
    ap.add_argument("--read-eio", type=split_spec)
    ap.add_argument("--write-eio", type=split_spec)
    ap.add_argument("--fsync-enospc", action="append", default=[])
    a = ap.parse_args()
    fs = FaultFs(a.backing, a.read_eio, a.write_eio, a.fsync_enospc)
    # Foreground and multi-threaded; big writes so a 4 MiB write is 32 requests, not 1024.
    FUSE(fs, a.mountpoint, foreground=True, nothreads=False, big_writes=True,
         fsname="vhdprep-faultfs")


if __name__ == "__main__":
    main()
