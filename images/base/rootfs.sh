#!/bin/sh
# Builds a debian:bookworm-slim equivalent root filesystem as a tar archive, for
# sites where no registry serves the base image. Needs root and debootstrap.
# Usage: rootfs.sh OUTPUT.tar [MIRROR]
# The mirror defaults to the first Debian mirror in the host's apt sources.
set -eu

out="${1:?usage: rootfs.sh OUTPUT.tar [MIRROR]}"
mirror="${2:-${SANDPIT_DEBIAN_MIRROR:-}}"

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "debootstrap is not installed: install it (apt-get install debootstrap) or load debian:bookworm-slim into the engine" >&2
    exit 3
fi
if [ "$(id -u)" != 0 ]; then
    echo "building the base image needs root (debootstrap): run as root or load debian:bookworm-slim into the engine" >&2
    exit 3
fi

if [ -z "$mirror" ]; then
    mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null \
        | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)
fi
if [ -z "$mirror" ]; then
    echo "no Debian mirror found in the host's apt sources: set SANDPIT_DEBIAN_MIRROR" >&2
    exit 3
fi

root=$(mktemp -d /tmp/sandpit-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT INT TERM

echo "debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >&2

# Trim it the way the slim image is trimmed: no apt lists, docs or man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
rm -f "$root"/etc/hostname "$root"/etc/resolv.conf
cat > "$root"/etc/apt/sources.list <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
SOURCES
sec=$(echo "$mirror" | sed 's#/debian/*$#/debian-security#')
echo "deb $sec bookworm-security main" >> "$root"/etc/apt/sources.list

tar --numeric-owner --xattrs -C "$root" -cf "$out" .
echo "wrote $out" >&2
