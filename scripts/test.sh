#!/usr/bin/env bash
# The one test command of vhdprep (README "Testing"; .ci/run calls it).
#
# On a fresh Debian machine, as root: installs the peer tools the tests compare against
# (qemu-img, sfdisk/sgdisk/fdisk/partx/blkid, the mkfs tools, debugfs, xfs_db, btrfs, LVM,
# mtools ...), then checks formatting and lints and runs every test of the workspace. Tests
# never skip a missing tool: they fail naming it. Some tests need root and loop devices
# (LVM fixtures), as CI has.
set -euo pipefail
cd "$(dirname "$0")/.."

# tool:debian-package pairs the tests need.
needed=(qemu-img:qemu-utils sfdisk:fdisk fdisk:fdisk sgdisk:gdisk partx:util-linux
        blkid:util-linux mkswap:util-linux losetup:mount mkfifo:coreutils cp:coreutils
        mkfs.ext4:e2fsprogs debugfs:e2fsprogs mkfs.vfat:dosfstools mcopy:mtools
        mkfs.xfs:xfsprogs xfs_db:xfsprogs mkfs.btrfs:btrfs-progs btrfs-convert:btrfs-progs
        pvcreate:lvm2 cryptsetup:cryptsetup-bin mksquashfs:squashfs-tools xorriso:xorriso
        mkudffs:udftools mkfs.ntfs:ntfs-3g zstd:zstd sbverify:sbsigntool objdump:binutils
        cpio:cpio lsinitramfs:initramfs-tools-core lz4:lz4 xz:xz-utils bzip2:bzip2
        gzip:gzip sshd:openssh-server python3:python3 strace:strace
        xmllint:libxml2-utils b3sum:b3sum md5sum:coreutils sha256sum:coreutils
        openssl:openssl ssh-keygen:openssh-client sbattach:sbsigntool dumpe2fs:e2fsprogs
        e2fsck:e2fsprogs timeout:coreutils truncate:coreutils script:bsdutils mdel:mtools
        nmcli:network-manager unshare:util-linux nsenter:util-linux mount:mount fallocate:util-linux stat:coreutils
        file:file tar:tar qemu-io:qemu-utils qcowinfo:libqcow-utils
        vhdiinfo:libvhdi-utils vhdimount:libvhdi-utils fusermount:fuse3 gcc:gcc
        vmdkinfo:libvmdk-utils vmdkmount:libvmdk-utils rpm:rpm rpmbuild:rpm dpkg-query:dpkg
        objcopy:binutils bootctl:systemd-boot systemd-analyze:systemd
        grub-editenv:grub2-common dracut:dracut-core lsinitrd:dracut-core depmod:kmod
        iconv:libc-bin)
missing=()
for pair in "${needed[@]}"; do
  tool=${pair%%:*} pkg=${pair##*:}
  command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
done
# Files (not commands) the tests compare with; /usr/bin/time, since `command -v time` finds
# the shell keyword.
[ -f /usr/lib/grub/i386-pc/boot.img ] || missing+=(grub-pc-bin)
[ -x /usr/bin/time ] || missing+=(time)
# Unified kernel images are built over systemd's stub; systemd-boot's own binary is read too.
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || missing+=(systemd-boot-efi)
# The FUSE fault injector of tests/writer_faults_fs.rs (tests/faultfs.py) is fusepy over libfuse2.
compgen -G '/usr/lib/*/libfuse.so.2' >/dev/null || missing+=(libfuse2)
# The qcow2 tests read images with libqcow's Python binding, as Debian's python3 has it.
/usr/bin/python3 -c 'import pyqcow' 2>/dev/null || missing+=(python3-libqcow)
# The rpm database tests write Berkeley DB files with libdb's Python binding (Debian's python3).
/usr/bin/python3 -c 'import bsddb3' 2>/dev/null || missing+=(python3-bsddb3)
# pyvhdi (libvhdi's Python binding) reads differencing VHDX chains in the VHDX tests.
compgen -G '/usr/lib/python3/dist-packages/pyvhdi*.so' >/dev/null || missing+=(python3-libvhdi)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing packages ${missing[*]}; run as root (apt-get) or install them" >&2
    exit 2
  fi
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The tests compare netplan YAML with PyYAML's reading.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q PyYAML
# tests/faultfs.py: a FUSE filesystem injecting EIO and ENOSPC (fusepy binds libfuse2).
python3 -c 'import fuse' 2>/dev/null || python3 -m pip install -q fusepy
# tests/upload_azurite.rs: Microsoft's storage emulator (npm `azurite`, kept outside the
# checkout like the fixtures) and Microsoft's Python SDK as the other side.
command -v npm >/dev/null 2>&1 || {
  [ "$(id -u)" -eq 0 ] || { echo "scripts/test.sh: npm is missing; run as root" >&2; exit 2; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
}
export VHDPREP_AZURITE=${VHDPREP_AZURITE:-/var/cache/vhdprep-node/node_modules/.bin/azurite-blob}
[ -x "$VHDPREP_AZURITE" ] ||
  npm install --silent --no-audit --no-fund --prefix /var/cache/vhdprep-node azurite@3.35.0
python3 -c 'import azure.storage.blob' 2>/dev/null || python3 -m pip install -q azure-storage-blob
# The SARIF renderer's tests validate against the OASIS schema, URI formats included.
python3 -c 'import jsonschema, rfc3986_validator' 2>/dev/null ||
  python3 -m pip install -q jsonschema rfc3986-validator

# Real images built by real tools (mmdebstrap, mkfs.*, sgdisk, LVM): built when missing or
# when fixtures/ changed, cached outside the checkout so that later runs on this machine reuse
# them (a fresh machine builds them: about 3 minutes for the images plus the mmdebstrap root).
export VHDPREP_FIXTURE_CACHE=${VHDPREP_FIXTURE_CACHE:-/var/cache/vhdprep-fixtures}
echo "== fixtures (cache: $VHDPREP_FIXTURE_CACHE)" >&2
fixtures/build-images.sh

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
# The cargo-fuzz wrappers are run with nightly by scripts/fuzz.sh; here they only have to compile
# (their bodies, in crates/fuzz, are tested below over the committed seeds and regressions).
echo "== fuzz targets compile" >&2
cargo check --manifest-path fuzz/Cargo.toml --bins --locked
echo "== cargo test" >&2
cargo test --workspace --locked
