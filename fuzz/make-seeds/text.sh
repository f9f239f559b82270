#!/usr/bin/env bash
# Seeds for the text targets (crates/fuzz/src/text.rs): real configuration files read out of
# the Debian fixture images (read-only, with debugfs and mtools) and out of the Debian
# packages cached next to them. Formats no fixture holds (netplan, NetworkManager keyfiles,
# networkd, ifcfg, BLS entries, dracut) are short hand-written files in the upstream layout.
# Multi-file targets take their files joined with the byte 0x1e, in the order of the
# target's PATHS list (a missing trailing file is simply not there; an empty one is empty).
# Usage: fuzz/make-seeds/text.sh (needs debugfs, mtools, dpkg-deb, VHDPREP_FIXTURE_CACHE)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${VHDPREP_FIXTURE_CACHE:-/var/cache/vhdprep-fixtures}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for tool in debugfs mcopy dpkg-deb; do
    command -v $tool >/dev/null || { echo "text.sh: $tool is required" >&2; exit 1; }
done

gen2="$cache/gen2-gpt-ext4.raw?offset=269484032"
gen1="$cache/gen1-mbr-ext4.raw?offset=1048576"
arm64="$cache/arm64-gpt-ext4.raw?offset=269484032"
hybrid="$cache/hybrid-gpt.raw?offset=116391936"
# get IMAGE GUEST-PATH: a file of an ext4 root, on stdout (own temporary file: several
# run at once in process substitutions).
get() {
    local out; out=$(mktemp -u -p "$tmp")
    debugfs -R "dump $2 $out" "$1" >/dev/null 2>&1
    [ -s "$out" ] || { echo "text.sh: $2 not found in $1" >&2; exit 1; }
    cat "$out"
}
# esp IMAGE PATH: a file of an image's ESP (partition at 1 MiB).
esp() { local out; out=$(mktemp -u -p "$tmp"); mcopy -n -i "$cache/$1@@1048576" "::$2" "$out" && cat "$out"; }
# deb PACKAGE PATH: a file of a cached Debian package.
deb() { dpkg-deb --fsys-tarfile "$cache"/apt-archives/"$1"_*.deb | tar -xO ".$2"; }
RS=$'\x1e'
# join FILE...: the files separated by RS (a file named - is empty).
join() {
    local first=1 f
    for f in "$@"; do
        [ $first = 1 ] || printf '%s' "$RS"
        first=0
        [ "$f" = - ] || cat "$f"
    done
}
# seeds TARGET: its (emptied) seed folder.
seeds() { mkdir -p "$here/seeds/$1"; rm -f "$here/seeds/$1"/*; echo "$here/seeds/$1"; }
save() { local f="$tmp/$1"; cat > "$f"; echo "$f"; }

# fstab, os-release, waagent.conf
out=$(seeds fstab)
get "$gen2" /etc/fstab > "$out/gen2-gpt-ext4"
get "$gen1" /etc/fstab > "$out/gen1-mbr-ext4"
get "$arm64" /etc/fstab > "$out/arm64-gpt-ext4"
get "$hybrid" /etc/fstab > "$out/hybrid-gpt"
get "$cache/separate-var.raw?offset=269484032" /etc/fstab > "$out/separate-var"
out=$(seeds os_release)
get "$gen2" /usr/lib/os-release > "$out/debian-12"
out=$(seeds waagent_conf)
get "$gen2" /etc/waagent.conf > "$out/debian-12"

# cloud-init: cloud.cfg, 05_logging.cfg, 90_dpkg.cfg, 91-azure_datasource.cfg, 99-installer.cfg
out=$(seeds cloud_init)
cfg=$(get "$gen2" /etc/cloud/cloud.cfg | save cloud.cfg)
log=$(get "$gen2" /etc/cloud/cloud.cfg.d/05_logging.cfg | save logging.cfg)
azure=$(get "$gen2" /etc/cloud/cloud.cfg.d/91-azure_datasource.cfg | save azure.cfg)
join "$cfg" "$log" - "$azure" > "$out/debian-12"
join "$cfg" - - "$azure" > "$out/debian-12-no-logging"
for ex in datasources disk-setup mount-points reporting user-groups; do
    f=/usr/share/doc/cloud-init/examples/cloud-config-$ex.txt
    { deb cloud-init "$f" 2>/dev/null || deb cloud-init "$f.gz" | gunzip; } \
        | save "$ex" > /dev/null
    join "$cfg" - - "$azure" "$tmp/$ex" > "$out/example-$ex"
done

# grub.cfg: /boot/grub/grub.cfg, ESP EFI/debian/grub.cfg, /boot/grub2/grub.cfg
out=$(seeds grub_cfg)
join <(get "$gen2" /boot/grub/grub.cfg) <(esp gen2-gpt-ext4.raw /EFI/debian/grub.cfg) \
    > "$out/gen2-gpt-ext4"
get "$gen1" /boot/grub/grub.cfg > "$out/gen1-mbr-ext4"
join <(get "$arm64" /boot/grub/grub.cfg) <(esp arm64-gpt-ext4.raw /EFI/debian/grub.cfg) \
    > "$out/arm64-gpt-ext4"

# BLS: /boot/grub2/grubenv, then entries (Fedora/RHEL layout).
out=$(seeds bls)
{
    printf '# GRUB Environment Block\nsaved_entry=a-6.1.0-2\n'
    printf 'kernelopts=root=/dev/mapper/rootvg-rootlv ro crashkernel=auto resume=/dev/mapper/rootvg-swaplv rd.lvm.lv=rootvg/rootlv console=ttyS0,115200n8\n'
    printf 'boot_success=0\n'
    head -c 1024 /dev/zero | tr '\0' '#' | head -c 800
} | save grubenv > /dev/null
cat > "$tmp/e1" <<'BLS'
title Red Hat Enterprise Linux (6.1.0-1.el9.x86_64) 9.4 (Plow)
version 6.1.0-1.el9.x86_64
linux /vmlinuz-6.1.0-1
initrd /initramfs-6.1.0-1.img $tuned_initrd
options $kernelopts $tuned_params
grub_users $grub_users
grub_arg --unrestricted
grub_class rhel
BLS
cat > "$tmp/e2" <<'BLS'
title Fedora Linux (6.1.0-2.fc39.x86_64) 39 (Cloud Edition)
version 6.1.0-2.fc39.x86_64
linux /vmlinuz-6.1.0-2
initrd /initramfs-6.1.0-2.img
options root=UUID=0b3cf3a2-6f4f-4c1e-9d55-2a1f5e6c0e16 ro rootflags=subvol=root no_timer_check net.ifnames=0 console=tty1 console=ttyS0,115200n8
options rootdelay=300
grub_users $grub_users
grub_arg --unrestricted
grub_class fedora
BLS
join "$tmp/grubenv" "$tmp/e1" "$tmp/e2" > "$out/rhel-and-fedora"
join - "$tmp/e2" > "$out/fedora-no-grubenv"

# /etc/default/grub, grub.d drop-in, /etc/kernel/cmdline, menu.lst, loader.conf
out=$(seeds kernel_cmdline)
join <(get "$gen2" /etc/default/grub) <(get "$gen2" /etc/default/grub.d/50-azure.cfg) \
    > "$out/gen2-gpt-ext4"
join <(get "$gen2" /etc/default/grub) <(get "$gen2" /etc/default/grub.d/init-select.cfg) \
    <(printf 'root=UUID=0b3cf3a2-6f4f-4c1e-9d55-2a1f5e6c0e16 ro console=ttyS0 earlyprintk=ttyS0\n') \
    > "$out/with-kernel-cmdline"
join <(deb grub-cloud-amd64 /etc/default/grub) - - \
    <(printf 'default 0\ntimeout 5\ntitle CentOS (2.6.32-754.el6.x86_64)\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32-754.el6.x86_64 ro root=/dev/sda1 console=ttyS0 rootdelay=300\n\tinitrd /initramfs-2.6.32-754.el6.x86_64.img\n') \
    <(printf 'console="comconsole,vidconsole"\ncomconsole_speed="115200"\nautoboot_delay="-1"\n') \
    > "$out/grub-cloud-menu-lst-loader-conf"

# modprobe.d, dracut, initramfs-tools, modules.dep, modules.builtin, kernel config
out=$(seeds kernel_modules)
v=6.1.0-56-cloud-amd64
get "$gen2" /lib/modules/$v/modules.dep | { grep -E 'hv_|nvme|mlx|scsi_transport_fc' || true; } \
    | head -c 4096 | save dep > /dev/null
get "$gen2" /lib/modules/$v/modules.builtin | head -n 80 | save builtin > /dev/null
get "$gen2" /boot/config-$v | { grep -E 'HYPERV|HV_|NVME|MLX|^CONFIG_(EXT4|XFS|BTRFS)' || true; } \
    | save config > /dev/null
printf '# Azure: storvsc early\nadd_drivers+=" hv_vmbus hv_netvsc hv_storvsc "\nhostonly="no"\n' \
    | save dracut > /dev/null
join <(printf 'blacklist floppy\ninstall pcspkr /bin/true\noptions hv_netvsc ring_size=512\n') \
    <(deb kmod /lib/modprobe.d/aliases.conf) "$tmp/dracut" - \
    <(get "$gen2" /etc/initramfs-tools/modules) \
    <(get "$gen2" /etc/initramfs-tools/initramfs.conf) <(printf 'MODULES=dep\n') \
    "$tmp/dep" "$tmp/builtin" "$tmp/config" > "$out/gen2-gpt-ext4"

# netplan, interfaces, interfaces.d/eth0, NM keyfile, NM conf.d, networkd, ifcfg, rc.conf,
# iptables
out=$(seeds network_config)
cat > "$tmp/netplan" <<'NP'
# This file is generated from information provided by the datasource.  Changes
# to it will not persist across an instance reboot.
network:
    ethernets:
        eth0:
            dhcp4: true
            dhcp4-overrides:
                route-metric: 100
            dhcp6: false
            match:
                driver: hv_netvsc
                macaddress: 00:0d:3a:12:34:56
            set-name: eth0
    version: 2
NP
cat > "$tmp/nm" <<'NM'
[connection]
id=cloud-init eth0
uuid=1dd9a779-d327-56e1-8454-c65e2556c12c
autoconnect-priority=120
type=ethernet
interface-name=eth0

[user]
org.freedesktop.NetworkManager.origin=cloud-init

[ethernet]
mac-address=00:0D:3A:12:34:56

[ipv4]
method=auto
may-fail=false

[ipv6]
method=ignore
NM
join "$tmp/netplan" <(get "$gen2" /etc/network/interfaces) \
    <(deb ifupdown /usr/share/doc/ifupdown/examples/bridge) "$tmp/nm" \
    <(printf '[keyfile]\nunmanaged-devices=driver:mlx4_core;driver:mlx5_core\n') \
    <(printf '[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n\n[DHCPv4]\nUseDomains=true\n') \
    <(printf 'DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\nTYPE=Ethernet\nUSERCTL=no\nPEERDNS=yes\nIPV6INIT=no\nNM_CONTROLLED=yes\nDHCP_HOSTNAME=rhel9\n') \
    > "$out/all-formats"
join - <(deb ifupdown /usr/share/doc/ifupdown/examples/network-interfaces) > "$out/ifupdown-example"
# A Red Hat layout: a static NetworkManager keyfile as nmcli writes it (NetworkManager >= 1.40),
# the ifcfg-eth0 of Azure's RHEL guide with ONBOOT=no, and /etc/sysconfig/network (file 10).
nmcli --offline connection add type ethernet con-name "System eth0" ifname eth0 \
    ipv4.method manual ipv4.addresses 10.0.0.4/24 ipv4.gateway 10.0.0.1 \
    connection.autoconnect no match.interface-name 'eth* !eth1' > "$tmp/nm-static"
join - - - "$tmp/nm-static" - - \
    <(printf 'DEVICE=eth0\nONBOOT=no\nBOOTPROTO=dhcp\nTYPE=Ethernet\nIPV6INIT=no\nPERSISTENT_DHCLIENT=yes\nNM_CONTROLLED=no\n') \
    - - <(printf 'NETWORKING=yes\nHOSTNAME=localhost.localdomain\nNOZEROCONF=yes\n') \
    > "$out/rhel9-nmcli"

# sshd_config, sshd_config.d drop-in, passwd, shadow, sudoers.d, dpkg status, a dpkg file list
out=$(seeds system_config)
get "$gen2" /var/lib/dpkg/status | python3 -c '
import sys
want = {"waagent", "cloud-init", "openssh-server", "python3", "python3.11", "systemd", "sudo"}
for stanza in sys.stdin.read().split("\n\n"):
    name = stanza.split("\n", 1)[0].removeprefix("Package: ")
    if name in want:
        print("\n".join(l for l in stanza.split("\n") if not l.startswith(" ")), end="\n\n")
' | save status > /dev/null
join <(get "$gen2" /etc/ssh/sshd_config) \
    <(printf 'PasswordAuthentication no\nClientAliveInterval 120\n') \
    <(get "$gen2" /etc/passwd) <(get "$gen2" /etc/shadow) \
    <(get "$gen2" /etc/sudoers.d/README) "$tmp/status" \
    <(get "$gen2" /var/lib/dpkg/info/openssh-server.list) > "$out/gen2-gpt-ext4"
# RHEL 9's /etc/selinux/config (file 8), as its selinux-policy installs it.
join - - - - - - - "$here/../crates/guest/tests/data/distro/rhel9-selinux-config" \
    > "$out/rhel9-selinux"
