#!/usr/bin/env bash
# Install Fleet on a store's Pi: the fleet user, directories, binaries,
# trust keys, token files, the reconciler config, the systemd units; then
# start fleet-edge, enroll the node and enable the reconciler. Idempotent: run it again to
# upgrade binaries or change the config; the edge token and an enrolled
# node key are kept. See docs/operations/pi.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: install.sh --store TENANT/STORE --repo-url URL --bin-dir DIR --trust-key FILE [options]

Required:
  --store TENANT/STORE        this store, e.g. acme/soho
  --repo-url URL              the fleet repo
  --bin-dir DIR               directory holding fleet-edge and fleet-reconciler
  --trust-key FILE            a minisign public key (*.pub); repeat for several

Options:
  --branch NAME               fleet repo branch (default main)
  --status-url URL            the status service (reports queue without it)
  --edge-listen ADDR          where fleet-edge listens (default 0.0.0.0:7070)
  --interval SECS             seconds between passes (default 60)
  --git-token-file FILE       HTTPS token for a private fleet repo (copied, 0600)
  --bootstrap-token-file FILE enroll the node with this single-use token
                              (fleet-status token create TENANT/STORE); needs
                              --status-url. fleet-edge is started first: a
                              failed enrollment never keeps the POS down
  --reenroll                  enroll even if the node already has a key
  --keep-days N               edge backups kept (default 14)
  --timer                     a pass a minute from fleet-reconciler-once.timer
                              instead of the fleet-reconciler daemon
  --no-enable                 install, but do not enable or start units
  --user NAME                 the service user (default fleet; the units run
                              as fleet, so change them too if you change it)
  --root DIR                  install into the staging root DIR (no user is
                              created, no chown unless the user exists, no
                              enrollment, no systemctl): for tests and images
  --dry-run                   print what would be done, change nothing
  -h, --help                  this help

Exit: 0 installed; 1 refused (bad flags or files; nothing changed);
3 installed and serving, but the enrollment failed (run it again later).

Layout (below --root): /usr/local/bin/fleet-{edge,reconciler},
/usr/local/share/doc/fleet/ (the docs the units name),
/etc/fleet/{reconciler.toml,edge.env,edge.token,git.token,trust/},
/var/lib/fleet (reconciler state), /var/lib/fleet-edge (edge db),
/var/backups/fleet-edge, /etc/systemd/system/fleet-*.
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 1; }

STORE="" REPO_URL="" BIN_DIR="" BRANCH="main" STATUS_URL="" EDGE_LISTEN="0.0.0.0:7070"
INTERVAL=60 GIT_TOKEN_FILE="" BOOTSTRAP_TOKEN_FILE="" REENROLL=0 KEEP_DAYS=14
TIMER=0 ENABLE=1 ROOT="" DRY_RUN=0
TRUST_KEYS=()
USER_NAME=fleet
UNITS_DIR="$(cd "$(dirname "$0")" && pwd)"

while [ $# -gt 0 ]; do
    case "$1" in
        --store) STORE="${2:?--store needs a value}"; shift 2 ;;
        --repo-url) REPO_URL="${2:?--repo-url needs a value}"; shift 2 ;;
        --bin-dir) BIN_DIR="${2:?--bin-dir needs a value}"; shift 2 ;;
        --trust-key) TRUST_KEYS+=("${2:?--trust-key needs a value}"); shift 2 ;;
        --branch) BRANCH="${2:?}"; shift 2 ;;
        --status-url) STATUS_URL="${2:?}"; shift 2 ;;
        --edge-listen) EDGE_LISTEN="${2:?}"; shift 2 ;;
        --interval) INTERVAL="${2:?}"; shift 2 ;;
        --git-token-file) GIT_TOKEN_FILE="${2:?}"; shift 2 ;;
        --bootstrap-token-file) BOOTSTRAP_TOKEN_FILE="${2:?}"; shift 2 ;;
        --reenroll) REENROLL=1; shift ;;
        --keep-days) KEEP_DAYS="${2:?}"; shift 2 ;;
        --timer) TIMER=1; shift ;;
        --no-enable) ENABLE=0; shift ;;
        --user) USER_NAME="${2:?--user needs a value}"; shift 2 ;;
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[ -n "$STORE" ] || die "--store is required"
[[ "$STORE" =~ ^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$ ]] || die "--store must be tenant/store (lower-case slugs), got '$STORE'"
[ -n "$REPO_URL" ] || die "--repo-url is required"
[ -n "$BIN_DIR" ] || die "--bin-dir is required"
[ "${#TRUST_KEYS[@]}" -gt 0 ] || die "--trust-key is required (at least one)"
[[ "$INTERVAL" =~ ^[0-9]+$ ]] && [ "$INTERVAL" -ge 1 ] && [ "$INTERVAL" -le 86400 ] || die "--interval must be 1..86400"
[[ "$KEEP_DAYS" =~ ^[0-9]+$ ]] || die "--keep-days must be a number"
for b in fleet-edge fleet-reconciler; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing or not executable"
done
for k in "${TRUST_KEYS[@]}"; do
    [ -f "$k" ] || die "trust key $k does not exist"
    case "$k" in *.pub) ;; *) die "trust key $k must be named *.pub" ;; esac
done
[ -z "$GIT_TOKEN_FILE" ] || [ -f "$GIT_TOKEN_FILE" ] || die "$GIT_TOKEN_FILE does not exist"
[ -z "$BOOTSTRAP_TOKEN_FILE" ] || [ -f "$BOOTSTRAP_TOKEN_FILE" ] || die "$BOOTSTRAP_TOKEN_FILE does not exist"
[ -z "$BOOTSTRAP_TOKEN_FILE" ] || [ -n "$STATUS_URL" ] || die "--bootstrap-token-file needs --status-url: the address of the status service to enroll with"
if [ -n "$ROOT" ]; then
    [ "$DRY_RUN" -eq 1 ] || mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" 2>/dev/null && pwd || echo "$ROOT")"
fi

# TOML basic strings: refuse what would need escaping rather than escape it.
for v in "$REPO_URL" "$BRANCH" "$STATUS_URL"; do
    case "$v" in *'"'*|*'\'*) die "quotes and backslashes are not allowed in '$v'" ;; esac
done

have_user=0
GROUP_NAME="$USER_NAME"
if id -u "$USER_NAME" >/dev/null 2>&1; then
    have_user=1
    GROUP_NAME="$(id -gn "$USER_NAME")"
fi

run() {
    if [ "$DRY_RUN" -eq 1 ]; then echo "would run: $*"; else "$@"; fi
}

# dir PATH MODE OWNER:GROUP
dir() {
    run mkdir -p "$ROOT$1"
    run chmod "$2" "$ROOT$1"
    own "$3" "$ROOT$1"
}

own() {
    # In a dry run too, only what the real run would do: no chown to a user
    # that a staging root does not have.
    if [ "$have_user" -eq 1 ]; then run chown "$1" "$2"; fi
}

# file SRC DEST MODE OWNER:GROUP  (copied only when it differs)
file() {
    if ! cmp -s "$1" "$ROOT$2"; then
        run install -m "$3" "$1" "$ROOT$2"
    fi
    run chmod "$3" "$ROOT$2"
    own "$4" "$ROOT$2"
}

# content DEST MODE OWNER:GROUP < text
content() {
    local tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    if [ "$DRY_RUN" -eq 1 ]; then
        echo "would write $ROOT$1 ($2, $3):"
        sed 's/^/    | /' "$tmp"
    fi
    file "$tmp" "$1" "$2" "$3"
    rm -f "$tmp"
}

echo "Installing Fleet for $STORE${ROOT:+ into $ROOT}."
[ "$DRY_RUN" -eq 0 ] || echo "(dry run: nothing is changed)"
[ -n "$ROOT" ] || [ "$(id -u)" -eq 0 ] || [ "$DRY_RUN" -eq 1 ] || die "run as root (or use --root DIR / --dry-run)"

# 1. The user.
if [ -z "$ROOT" ] && [ "$have_user" -eq 0 ]; then
    run useradd --system --user-group --home-dir /var/lib/fleet --no-create-home \
        --shell /usr/sbin/nologin --comment "Fleet store agent" "$USER_NAME"
    have_user=1
fi

# 2. Directories.
dir /usr/local/bin 0755 root:root
dir /etc/fleet 0750 root:$GROUP_NAME
dir /etc/fleet/trust 0750 root:$GROUP_NAME
dir /var/lib/fleet 0750 $USER_NAME:$GROUP_NAME
dir /var/lib/fleet-edge 0750 $USER_NAME:$GROUP_NAME
dir /var/backups/fleet-edge 0750 $USER_NAME:$GROUP_NAME
dir /etc/systemd/system 0755 root:root

# 3. Binaries.
for b in fleet-edge fleet-reconciler; do
    file "$BIN_DIR/$b" "/usr/local/bin/$b" 0755 root:root
done

# 4. Trust keys: exactly the ones given (a rotated-out key is removed).
wanted=" "
for k in "${TRUST_KEYS[@]}"; do
    file "$k" "/etc/fleet/trust/$(basename "$k")" 0640 root:$GROUP_NAME
    wanted="$wanted$(basename "$k") "
done
if [ -d "$ROOT/etc/fleet/trust" ]; then
    for old in "$ROOT"/etc/fleet/trust/*.pub; do
        [ -e "$old" ] || continue
        case "$wanted" in *" $(basename "$old") "*) ;; *) run rm -f "$old" ;; esac
    done
fi

# 5. Secrets: the edge token is made once and kept; the Git token is copied.
if [ ! -s "$ROOT/etc/fleet/edge.token" ]; then
    if [ "$DRY_RUN" -eq 1 ]; then
        echo "would run: generate $ROOT/etc/fleet/edge.token (32 random bytes, base64)"
    else
        (umask 077 && head -c 32 /dev/urandom | base64 >"$ROOT/etc/fleet/edge.token")
    fi
fi
run chmod 0600 "$ROOT/etc/fleet/edge.token"
own "$USER_NAME:$GROUP_NAME" "$ROOT/etc/fleet/edge.token"
if [ -n "$GIT_TOKEN_FILE" ]; then
    file "$GIT_TOKEN_FILE" /etc/fleet/git.token 0600 "$USER_NAME:$GROUP_NAME"
fi

# 6. Configuration.
{
    echo "# Written by deploy/pi/install.sh; run it again to change it."
    echo "store = \"$STORE\""
    echo "repo_url = \"$REPO_URL\""
    echo "branch = \"$BRANCH\""
    echo "trust_dir = \"/etc/fleet/trust\""
    echo "edge_url = \"http://127.0.0.1:${EDGE_LISTEN##*:}\""
    echo "edge_token_file = \"/etc/fleet/edge.token\""
    [ -z "$STATUS_URL" ] || echo "status_url = \"$STATUS_URL\""
    echo "state_dir = \"/var/lib/fleet\""
    echo "interval_secs = $INTERVAL"
    [ -z "$GIT_TOKEN_FILE" ] || echo "git_token_file = \"/etc/fleet/git.token\""
} | content /etc/fleet/reconciler.toml 0640 "root:$GROUP_NAME"
content /etc/fleet/edge.env 0640 "root:$GROUP_NAME" <<EOF
# Written by deploy/pi/install.sh (see edge.env.example).
FLEET_EDGE_LISTEN=$EDGE_LISTEN
FLEET_BACKUP_KEEP_DAYS=$KEEP_DAYS
RUST_LOG=info
EOF

# 7. Units.
for u in fleet-edge.service fleet-reconciler.service fleet-reconciler-once.service \
         fleet-reconciler-once.timer fleet-edge-backup.service fleet-edge-backup.timer; do
    file "$UNITS_DIR/$u" "/etc/systemd/system/$u" 0644 root:root
done

# 7b. The docs the units name (Documentation=), from the Fleet tree that
# holds this deploy/pi/ when it is there.
DOCS_DIR="$UNITS_DIR/../../docs/operations"
if [ -d "$DOCS_DIR" ]; then
    dir /usr/local/share/doc/fleet 0755 root:root
    for d in edge.md reconciler.md pi.md troubleshooting.md; do
        file "$DOCS_DIR/$d" "/usr/local/share/doc/fleet/$d" 0644 root:root
    done
else
    echo "note: $DOCS_DIR not found; the units' Documentation= pages are not installed (copy the whole Fleet tree, or use the fleet-store package)"
fi

# 8. Enrollment and units: only on the real machine.
if [ -n "$ROOT" ]; then
    echo "Staging root: skipping enrollment and systemctl${BOOTSTRAP_TOKEN_FILE:+ (--bootstrap-token-file is not used: enroll on the real machine)}."
    if [ "$DRY_RUN" -eq 1 ]; then
        echo "Dry run: nothing was changed."
    else
        echo "Installed into $ROOT."
    fi
    exit 0
fi
run systemctl daemon-reload
# The POS backend first: nothing at head office (a mistyped token, the
# status service down) may keep the store's point of sale from starting.
if [ "$ENABLE" -eq 1 ]; then
    run systemctl enable --now fleet-edge.service fleet-edge-backup.timer
fi
enroll_failed=0
if [ -n "$BOOTSTRAP_TOKEN_FILE" ]; then
    if [ -s /var/lib/fleet/node.key ] && [ "$REENROLL" -eq 0 ]; then
        echo "The node is already enrolled (/var/lib/fleet/node.key); --reenroll to replace its key."
    elif ! run runuser -u "$USER_NAME" -- /usr/local/bin/fleet-reconciler \
            --config /etc/fleet/reconciler.toml enroll --token-file "$BOOTSTRAP_TOKEN_FILE"; then
        enroll_failed=1
    fi
fi
if [ "$ENABLE" -eq 1 ]; then
    if [ "$TIMER" -eq 1 ]; then
        run systemctl disable --now fleet-reconciler.service
        run systemctl enable --now fleet-reconciler-once.timer
    else
        run systemctl disable --now fleet-reconciler-once.timer
        run systemctl enable --now fleet-reconciler.service
    fi
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
  sudo -u $USER_NAME fleet-reconciler --config /etc/fleet/reconciler.toml enroll --token-file FILE
EOF
    exit 3
fi
echo "Installed. Check: systemctl status fleet-edge fleet-reconciler; fleet-reconciler status"
