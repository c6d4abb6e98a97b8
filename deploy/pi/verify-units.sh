#!/usr/bin/env bash
# Check the Pi's systemd units with `systemd-analyze verify` in a throwaway
# root (the units reference /usr/bin/fleet-* and /etc/fleet/edge.env,
# which need not exist on the machine that checks them). Prints what
# systemd-analyze says about our units and exits non-zero if it said
# anything. Needs systemd-analyze (Debian: apt-get install systemd).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v systemd-analyze >/dev/null || { echo "verify-units.sh: systemd-analyze not found" >&2; exit 2; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/etc/fleet" "$root/usr/lib/systemd" "$root/usr/bin" "$root/bin"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp /usr/bin/find "$root/usr/bin/"
cp /bin/sh "$root/bin/"
for b in fleet-edge fleet-reconciler; do printf '#!/bin/sh\n' >"$root/usr/bin/$b"; chmod 755 "$root/usr/bin/$b"; done
cp "$here/edge.env.example" "$root/etc/fleet/edge.env"
units=()
for u in "$here"/*.service "$here"/*.timer; do
    cp "$u" "$root/etc/systemd/system/"
    units+=("$(basename "$u")")
done
out="$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1 | grep -v "^/usr/lib/systemd/system/[^f]" || true)"
if [ -n "$out" ]; then
    echo "$out"
    exit 1
fi
echo "systemd-analyze verify: ${units[*]}: clean"
