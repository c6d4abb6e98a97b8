#!/usr/bin/env bash
# Install Fleet on a store's Pi: a thin wrapper around the fleet-store
# Debian package. The package makes the fleet user, the directories, the
# edge token and the units, and starts fleet-edge at once; this script then
# writes what is particular to one store (trust keys, the reconciler config,
# the edge's listen address), enrolls the node and enables the reconciler.
# Idempotent: run it again to upgrade the package or change the config; the
# edge token and an enrolled node key are kept. See docs/operations/pi.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: install.sh --store TENANT/STORE --repo-url URL --trust-root FILE [options]
       install.sh --store TENANT/STORE --source status --status-url URL --trust-root FILE [options]

Required:
  --store TENANT/STORE        this store, e.g. acme/soho
  --repo-url URL              the fleet repo (with --source status: optional,
                              the fallback when the relay fails)
  --trust-root FILE           the fleet's trust root to pin (trust/root/1.yaml
                              of the fleet repo, see signing.md); the store
                              follows every later version that verifies.
                              Kept on later runs that do not give it
  --trust-key FILE            instead of (or besides) --trust-root: a minisign
                              public key (*.pub) to pin; repeat for several.
                              Exactly the keys given stay pinned

The package:
  --package FILE.deb          install or upgrade the fleet-store package from
                              FILE (scripts/build-deb makes it); without it the
                              fleet-store package must already be installed

Options:
  --source git|status         where releases come from (default git): the
                              fleet repo, or the status service's release
                              relay (needs --status-url; the store then
                              needs no Git access). Verified the same way
  --branch NAME               fleet repo branch (default main)
  --status-url URL            the status service (reports queue without it)
  --edge-listen ADDR          where fleet-edge listens (default: edge.env's,
                              0.0.0.0:7070 as packaged)
  --keep-days N               edge backups kept (default: edge.env's, 14)
  --interval SECS             seconds between passes (default 60)
  --git-token-file FILE       HTTPS token for a private fleet repo (copied, 0600)
  --bootstrap-token-file FILE enroll the node with this single-use token
                              (fleet-status token create TENANT/STORE); needs
                              --status-url. fleet-edge is started first: a
                              failed enrollment never keeps the POS down
  --reenroll                  enroll even if the node already has a key
  --device NAME               make a device token for a register or kitchen
                              screen (fleet-edge device add; repeat): printed
                              as "NAME TOKEN", once. A device already there
                              keeps its token. Registers get these, never
                              the admin token /etc/fleet/edge.token
  --timer                     a pass a minute from fleet-reconciler-once.timer
                              instead of the fleet-reconciler daemon
  --no-enable                 configure, but do not enable or start the
                              reconciler (the package always runs fleet-edge)
  --root DIR                  install the package into the root DIR (dpkg
                              --root) and configure it there: no enrollment,
                              units enabled as links only; for images and
                              tests
  --dry-run                   print what would be done, change nothing
  -h, --help                  this help

Runs as root (dpkg sets owners), except with --dry-run.
Exit: 0 installed; 1 refused (bad flags or files; nothing changed);
3 installed and serving, but the enrollment failed (run it again later).

Layout (below --root): the package's /usr/bin/fleet-{edge,reconciler},
/usr/lib/systemd/system/fleet-*, /usr/share/doc/fleet-store/; this
script's /etc/fleet/{reconciler.toml,trust/root.yaml,trust/*.pub,git.token} and the two
settings of /etc/fleet/edge.env; the package's /etc/fleet/edge.token,
/var/lib/fleet, /var/lib/fleet-edge, /var/backups/fleet-edge.
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 1; }

STORE="" REPO_URL="" PACKAGE="" TRUST_ROOT="" BRANCH="main" STATUS_URL="" EDGE_LISTEN="" KEEP_DAYS=""
INTERVAL=60 GIT_TOKEN_FILE="" BOOTSTRAP_TOKEN_FILE="" REENROLL=0 SOURCE="git"
TIMER=0 ENABLE=1 ROOT="" DRY_RUN=0
TRUST_KEYS=()
DEVICES=()

while [ $# -gt 0 ]; do
    case "$1" in
        --store) STORE="${2:?--store needs a value}"; shift 2 ;;
        --repo-url) REPO_URL="${2:?--repo-url needs a value}"; shift 2 ;;
        --package) PACKAGE="${2:?--package needs a file}"; shift 2 ;;
        --trust-key) TRUST_KEYS+=("${2:?--trust-key needs a value}"); shift 2 ;;
        --trust-root) TRUST_ROOT="${2:?--trust-root needs a file}"; shift 2 ;;
        --branch) BRANCH="${2:?}"; shift 2 ;;
        --status-url) STATUS_URL="${2:?}"; shift 2 ;;
        --edge-listen) EDGE_LISTEN="${2:?}"; shift 2 ;;
        --keep-days) KEEP_DAYS="${2:?}"; shift 2 ;;
        --interval) INTERVAL="${2:?}"; shift 2 ;;
        --source) SOURCE="${2:?--source needs git or status}"; shift 2 ;;
        --git-token-file) GIT_TOKEN_FILE="${2:?}"; shift 2 ;;
        --bootstrap-token-file) BOOTSTRAP_TOKEN_FILE="${2:?}"; shift 2 ;;
        --reenroll) REENROLL=1; shift ;;
        --device) DEVICES+=("${2:?--device needs a name}"); shift 2 ;;
        --timer) TIMER=1; shift ;;
        --no-enable) ENABLE=0; shift ;;
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --bin-dir|--user) die "$1 is gone: the fleet-store package holds the binaries and makes the fleet user; give --package FILE.deb (see docs/operations/packages.md)" ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

# ---------------------------------------------------------------- checks
# Everything is checked before anything changes.
[ -n "$STORE" ] || die "--store is required"
[[ "$STORE" =~ ^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$ ]] || die "--store must be tenant/store (lower-case slugs), got '$STORE'"
case "$SOURCE" in
    git) [ -n "$REPO_URL" ] || die "--repo-url is required (or --source status with --status-url: releases from the status service's relay)" ;;
    status) [ -n "$STATUS_URL" ] || die "--source status needs --status-url: the status service whose relay serves the releases" ;;
    *) die "--source must be git or status, got '$SOURCE'" ;;
esac
[ "${#TRUST_KEYS[@]}" -gt 0 ] || [ -n "$TRUST_ROOT" ] || [ -s "${ROOT:-}/etc/fleet/trust/root.yaml" ] \
    || die "--trust-root (or --trust-key) is required: what the store trusts"
if [ -n "$TRUST_ROOT" ]; then
    [ -f "$TRUST_ROOT" ] || die "trust root $TRUST_ROOT does not exist"
    grep -q '^kind: TrustRoot' "$TRUST_ROOT" || die "$TRUST_ROOT is not a trust root (no 'kind: TrustRoot'): give trust/root/<n>.yaml of the fleet repo"
fi
[[ "$INTERVAL" =~ ^[0-9]+$ ]] && [ "$INTERVAL" -ge 1 ] && [ "$INTERVAL" -le 86400 ] || die "--interval must be 1..86400"
[ -z "$KEEP_DAYS" ] || [[ "$KEEP_DAYS" =~ ^[0-9]+$ ]] || die "--keep-days must be a number"
[ -z "$EDGE_LISTEN" ] || [[ "$EDGE_LISTEN" =~ ^[][A-Za-z0-9.:*-]+:[0-9]+$ ]] || die "--edge-listen must be ADDRESS:PORT, got '$EDGE_LISTEN'"
for k in ${TRUST_KEYS[@]+"${TRUST_KEYS[@]}"}; do
    [ -f "$k" ] || die "trust key $k does not exist"
    case "$k" in *.pub) ;; *) die "trust key $k must be named *.pub" ;; esac
done
[ -z "$GIT_TOKEN_FILE" ] || [ -f "$GIT_TOKEN_FILE" ] || die "$GIT_TOKEN_FILE does not exist"
[ -z "$BOOTSTRAP_TOKEN_FILE" ] || [ -f "$BOOTSTRAP_TOKEN_FILE" ] || die "$BOOTSTRAP_TOKEN_FILE does not exist"
[ -z "$BOOTSTRAP_TOKEN_FILE" ] || [ -n "$STATUS_URL" ] || die "--bootstrap-token-file needs --status-url: the address of the status service to enroll with"
for d in ${DEVICES[@]+"${DEVICES[@]}"}; do
    [[ "$d" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || die "--device $d: a device name is 1 to 63 of a-z, 0-9 and -, starting with a letter or digit"
done
# TOML basic strings: refuse what would need escaping rather than escape it.
for v in "$REPO_URL" "$BRANCH" "$STATUS_URL"; do
    case "$v" in *'"'*|*'\'*) die "quotes and backslashes are not allowed in '$v'" ;; esac
done
command -v dpkg >/dev/null || die "dpkg not found: install.sh installs the fleet-store Debian package (Debian 12 or newer)"
if [ -n "$PACKAGE" ]; then
    [ -f "$PACKAGE" ] || die "package $PACKAGE does not exist"
    name="$(dpkg-deb --field "$PACKAGE" Package 2>/dev/null)" || die "$PACKAGE is not a Debian package"
    [ "$name" = fleet-store ] || die "$PACKAGE is the $name package; install.sh installs fleet-store"
fi
[ -z "$ROOT" ] || ROOT="$(realpath -m "$ROOT")"
DPKG=(dpkg)
SYSTEMCTL=(systemctl)
if [ -n "$ROOT" ]; then
    # The root's own dpkg database; its libc6 and systemd are this machine's.
    DPKG=(dpkg "--root=$ROOT" --force-script-chrootless --force-depends)
    SYSTEMCTL=(systemctl "--root=$ROOT")
fi
installed=0
if dpkg-query "--admindir=$ROOT/var/lib/dpkg" -W -f='${Status}' fleet-store 2>/dev/null | grep -q "ok installed"; then
    installed=1
fi
[ -n "$PACKAGE" ] || [ "$installed" -eq 1 ] || die "the fleet-store package is not installed${ROOT:+ in $ROOT}: give --package fleet-store_<version>_<arch>.deb (scripts/build-deb makes it; see docs/operations/packages.md)"
[ "$DRY_RUN" -eq 1 ] || [ "$(id -u)" -eq 0 ] || die "run as root (dpkg sets owners), or with --dry-run"

run() {
    if [ "$DRY_RUN" -eq 1 ]; then echo "would run: $*"; else "$@"; fi
}

# The owner of the package's directories, as the package made them (in a
# staging root, its fleet user is the root's, not this machine's).
own() { # REFERENCE FILE: owner and group of REFERENCE
    if [ -e "$ROOT$1" ]; then run chown --reference="$ROOT$1" "$2"; else run chown "fleet:fleet" "$2"; fi
}
group() { # REFERENCE FILE: group of REFERENCE
    if [ -e "$ROOT$1" ]; then run chgrp --reference="$ROOT$1" "$2"; else run chgrp fleet "$2"; fi
}

# put SRC DEST MODE: copy when it differs; prints what it writes in a dry run.
put() {
    if ! cmp -s "$1" "$ROOT$2"; then
        run install -m "$3" "$1" "$ROOT$2"
    fi
    run chmod "$3" "$ROOT$2"
}

# content DEST MODE < text
content() {
    local tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    if [ "$DRY_RUN" -eq 1 ] && ! cmp -s "$tmp" "$ROOT$1"; then
        echo "would write $ROOT$1 ($2):"
        sed 's/^/    | /' "$tmp"
    fi
    put "$tmp" "$1" "$2"
    rm -f "$tmp"
}

echo "Installing Fleet for $STORE${ROOT:+ into $ROOT}."
[ "$DRY_RUN" -eq 0 ] || echo "(dry run: nothing is changed)"

# 1. The package: user, directories, binaries, units, edge token; it
# starts fleet-edge (the POS) before anything else happens.
if [ -n "$PACKAGE" ]; then
    if [ -n "$ROOT" ] && [ ! -e "$ROOT/var/lib/dpkg/status" ]; then
        run mkdir -p "$ROOT/var/lib/dpkg/info" "$ROOT/var/lib/dpkg/updates" "$ROOT/etc"
        run touch "$ROOT/var/lib/dpkg/status"
    fi
    # An edited edge.env is kept (--force-confold), as apt would keep it.
    run "${DPKG[@]}" --force-confold -i "$PACKAGE"
fi

# 2. Trust: the pinned root (kept unless replaced), and exactly the *.pub
# keys given (a rotated-out key is removed).
if [ -n "$TRUST_ROOT" ]; then
    put "$TRUST_ROOT" /etc/fleet/trust/root.yaml 0640
    group /etc/fleet "$ROOT/etc/fleet/trust/root.yaml"
fi
wanted=" "
for k in ${TRUST_KEYS[@]+"${TRUST_KEYS[@]}"}; do
    put "$k" "/etc/fleet/trust/$(basename "$k")" 0640
    group /etc/fleet "$ROOT/etc/fleet/trust/$(basename "$k")"
    wanted="$wanted$(basename "$k") "
done
for old in "$ROOT"/etc/fleet/trust/*.pub; do
    [ -e "$old" ] || continue
    case "$wanted" in *" $(basename "$old") "*) ;; *) run rm -f "$old" ;; esac
done

# 3. The Git token of a private repo, readable by the reconciler only.
if [ -n "$GIT_TOKEN_FILE" ]; then
    put "$GIT_TOKEN_FILE" /etc/fleet/git.token 0600
    own /var/lib/fleet "$ROOT/etc/fleet/git.token"
elif [ -e "$ROOT/etc/fleet/git.token" ]; then
    run rm -f "$ROOT/etc/fleet/git.token"
fi

# 4. The edge's settings: only the ones given change the package's edge.env.
edge_env_before="$(cat "$ROOT/etc/fleet/edge.env" 2>/dev/null || true)"
set_env() { # KEY VALUE
    local file="$ROOT/etc/fleet/edge.env"
    if grep -q "^$1=$2\$" "$file" 2>/dev/null; then return; fi
    if grep -q "^$1=" "$file" 2>/dev/null; then
        run sed -i "s|^$1=.*|$1=$2|" "$file"
    else
        if [ "$DRY_RUN" -eq 1 ]; then echo "would run: echo $1=$2 >> $file"; else echo "$1=$2" >>"$file"; fi
    fi
}
[ -z "$EDGE_LISTEN" ] || set_env FLEET_EDGE_LISTEN "$EDGE_LISTEN"
[ -z "$KEEP_DAYS" ] || set_env FLEET_BACKUP_KEEP_DAYS "$KEEP_DAYS"
edge_env_changed=0
[ "$DRY_RUN" -eq 1 ] || [ "$edge_env_before" = "$(cat "$ROOT/etc/fleet/edge.env")" ] || edge_env_changed=1

# 5. The reconciler's configuration (no secrets in it).
listen="$EDGE_LISTEN"
if [ -z "$listen" ]; then
    listen="$(sed -n 's/^FLEET_EDGE_LISTEN=//p' "$ROOT/etc/fleet/edge.env" 2>/dev/null | tail -1 || true)"
    listen="${listen:-0.0.0.0:7070}"
fi
{
    echo "# Written by deploy/pi/install.sh; run it again to change it."
    echo "store = \"$STORE\""
    [ -z "$REPO_URL" ] || echo "repo_url = \"$REPO_URL\""
    [ "$SOURCE" = git ] || echo "source = \"$SOURCE\""
    echo "branch = \"$BRANCH\""
    echo "trust_dir = \"/etc/fleet/trust\""
    echo "edge_url = \"http://127.0.0.1:${listen##*:}\""
    echo "edge_token_file = \"/etc/fleet/edge.token\""
    [ -z "$STATUS_URL" ] || echo "status_url = \"$STATUS_URL\""
    echo "state_dir = \"/var/lib/fleet\""
    echo "interval_secs = $INTERVAL"
    [ -z "$GIT_TOKEN_FILE" ] || echo "git_token_file = \"/etc/fleet/git.token\""
} | content /etc/fleet/reconciler.toml 0640
group /etc/fleet "$ROOT/etc/fleet/reconciler.toml"

if [ "$TIMER" -eq 1 ]; then
    reconciler_unit=fleet-reconciler-once.timer other_unit=fleet-reconciler.service
else
    reconciler_unit=fleet-reconciler.service other_unit=fleet-reconciler-once.timer
fi

# 6. A staging root: units enabled as links; no enrollment, no services.
if [ -n "$ROOT" ]; then
    if [ "$ENABLE" -eq 1 ]; then
        run "${SYSTEMCTL[@]}" disable "$other_unit"
        run "${SYSTEMCTL[@]}" enable "$reconciler_unit"
    fi
    echo "Staging root: skipping enrollment and starting services${BOOTSTRAP_TOKEN_FILE:+ (--bootstrap-token-file is not used: enroll on the real machine)}."
    [ "${#DEVICES[@]}" -eq 0 ] || echo "Staging root: device tokens are made on the real machine (fleet-edge device add NAME)."
    if [ "$DRY_RUN" -eq 1 ]; then
        echo "Dry run: nothing was changed."
    else
        echo "Installed into $ROOT."
    fi
    exit 0
fi

# 7. The real machine. The POS backend first: nothing at head office (a
# mistyped token, the status service down) may keep the store's point of
# sale from running. The package started it; a changed edge.env needs a
# restart.
run systemctl enable --now fleet-edge.service fleet-edge-backup.timer
[ "$edge_env_changed" -eq 0 ] || run systemctl restart fleet-edge.service
# Device tokens, on the database fleet-edge serves (it makes it at start).
EDGE_DB=/var/lib/fleet-edge/edge.db
for d in ${DEVICES[@]+"${DEVICES[@]}"}; do
    if [ "$DRY_RUN" -eq 1 ]; then
        echo "would run: runuser -u fleet -- /usr/bin/fleet-edge device add $d --database $EDGE_DB"
        continue
    fi
    for _ in $(seq 20); do [ -e "$EDGE_DB" ] && break; sleep 0.5; done
    if runuser -u fleet -- /usr/bin/fleet-edge device list --database "$EDGE_DB" | grep -q "^$d "; then
        echo "Device $d exists; it keeps its token (fleet-edge device revoke $d, then add, for a new one)."
    else
        runuser -u fleet -- /usr/bin/fleet-edge device add "$d" --database "$EDGE_DB"
    fi
done
enroll_failed=0
if [ -n "$BOOTSTRAP_TOKEN_FILE" ]; then
    if [ -s /var/lib/fleet/node.key ] && [ "$REENROLL" -eq 0 ]; then
        echo "The node is already enrolled (/var/lib/fleet/node.key); --reenroll to replace its key."
    elif ! run runuser -u fleet -- /usr/bin/fleet-reconciler \
            --config /etc/fleet/reconciler.toml enroll --token-file "$BOOTSTRAP_TOKEN_FILE"; then
        enroll_failed=1
    fi
fi
if [ "$ENABLE" -eq 1 ]; then
    run systemctl disable --now "$other_unit"
    run systemctl enable "$reconciler_unit"
    # restart, not start: a running daemon reads a changed config only then.
    run systemctl restart "$reconciler_unit"
fi
if [ "$DRY_RUN" -eq 1 ]; then
    echo "Dry run: nothing was changed."
    exit 0
fi
if [ "$enroll_failed" -eq 1 ]; then
    cat >&2 <<EOF
Installed, but the node is NOT enrolled (the error is above). fleet-edge is
serving and the reconciler applies releases; its reports wait in the outbox
until the node is enrolled. Get a new token at head office, then run:
  sudo -u fleet fleet-reconciler --config /etc/fleet/reconciler.toml enroll --token-file FILE
EOF
    exit 3
fi
echo "Installed. Check: systemctl status fleet-edge fleet-reconciler; sudo -u fleet fleet-reconciler status"
