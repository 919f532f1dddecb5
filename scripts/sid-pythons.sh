#!/usr/bin/env bash
# Makes (or reuses) a Debian sid root with CPython 3.13, 3.14 and 3.15, where the tests run this
# repository's build through chroot (tracer/cli/tests/common/mod.rs, `sid_pythons`).
#
#   scripts/sid-pythons.sh            make or reuse the root, mount /proc and the repository in it
#   scripts/sid-pythons.sh --unmount  undo the mounts (the root stays for next time)
#
# The root is $TRACER_SID_ROOT, else <repository>/.cache/sid-root. It needs root privileges and
# network access to Debian's archive; where it cannot be made the script says so loudly and exits 0,
# except under CI (CI=true), where it fails.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="${TRACER_SID_ROOT:-$repo/.cache/sid-root}"
mirror="${TRACER_SID_MIRROR:-http://deb.debian.org/debian}"
pythons=(python3.13 python3.14 python3.15)

give_up() {
    echo "" >&2
    echo "!!! sid-pythons: cannot make the Debian sid root at $root: $*" >&2
    echo "!!! The tests will run on the host's Python 3.11 only and say so." >&2
    echo "" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
    exit 0
}

mounted() { mountpoint -q "$1" 2>/dev/null; }

if [ "${1:-}" = --unmount ]; then
    for m in "$root$repo" "$root/proc"; do
        # A mount still in use (another process inside the root) is detached lazily; failing to
        # unmount never fails the caller.
        if mounted "$m"; then umount "$m" 2>/dev/null || umount -l "$m" || true; fi
    done
    exit 0
fi

[ "$(id -u)" = 0 ] || give_up "it needs root (debootstrap, chroot, mount)"

have_all() {
    for p in "${pythons[@]}"; do [ -x "$root/usr/bin/$p" ] || return 1; done
    [ -e "$root/usr/lib/x86_64-linux-gnu/libunwind.so.8" ]
}

if ! have_all; then
    if [ ! -x "$root/usr/bin/python3.14" ]; then
        if ! command -v debootstrap >/dev/null; then
            { apt-get update && apt-get install -y debootstrap; } >&2 ||
                give_up "debootstrap is missing and could not be installed"
        fi
        echo "sid-pythons: debootstrap sid into $root (about a minute)" >&2
        mkdir -p "$root"
        debootstrap --variant=minbase \
            --include=python3.13,python3.13-venv,python3.14,python3.14-venv,libunwind8 \
            sid "$root" "$mirror" >&2 || give_up "debootstrap failed"
    fi
    mounted "$root/proc" || mount -t proc proc "$root/proc"
    # 3.15 (and anything a reused root lacks): from inside. libunwind is the tracer's native unwinder.
    # Valid-Until is not checked: the archive this machine reaches may serve a Release file whose
    # validity window is behind the clock.
    chroot "$root" sh -c 'apt-get -o Acquire::Check-Valid-Until=false update &&
        apt-get install -y python3.13 python3.13-venv \
        python3.14 python3.14-venv python3.15 python3.15-venv libunwind8' >&2 ||
        give_up "apt-get inside the root failed"
    have_all || give_up "the root still lacks one of ${pythons[*]}"
fi

mounted "$root/proc" || mount -t proc proc "$root/proc"
# The host's own certificate authorities (this machine reaches PyPI through a proxy whose CA only the
# host trusts), so that pip inside the root (harness run --root) can install packages.
for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$crt" ] || continue
    dest="$root/usr/local/share/ca-certificates/$(basename "$crt")"
    if ! cmp -s "$crt" "$dest"; then
        mkdir -p "$(dirname "$dest")" && cp "$crt" "$dest" && new_ca=1
    fi
done
if [ -n "${new_ca:-}" ]; then chroot "$root" update-ca-certificates >/dev/null 2>&1 || true; fi
# The repository at the same path inside, so the build, the test scripts and the captures are where
# the tests expect them on both sides.
if ! mounted "$root$repo"; then
    mkdir -p "$root$repo"
    mount --bind "$repo" "$root$repo"
fi
for p in "${pythons[@]}"; do
    echo "sid-pythons: $(chroot "$root" "$p" -c 'import sys; print(sys.executable, sys.version.split()[0])')" >&2
done
echo "$root"
