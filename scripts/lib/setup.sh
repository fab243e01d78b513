# Shared by scripts/*: install what Klink needs on a fresh machine, idempotently.
# shellcheck shell=bash

KLINK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$KLINK_ROOT/.venv"
_apt_updated=0

say() { printf '==> %s\n' "$*" >&2; }

# apt_install PACKAGE...: install Debian packages (as root), or say how and fail.
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing: install the Debian package(s) $* (apt-get install $*) and run again"
    return 1
  fi
  if [ "$_apt_updated" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ensure_command COMMAND DEBIAN_PACKAGE: install the package when the command is missing.
ensure_command() {
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# ensure_venv [EXTRAS]: .venv with the project installed (editable), reinstalled when
# pyproject.toml changes.
ensure_venv() {
  local extras=${1:-test}
  local python=${KLINK_PYTHON:-python3}
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      # Debian's own python3 keeps venv (and ensurepip) in a package of its own.
      rm -rf "$VENV"
      apt_install python3-venv
      "$python" -m venv "$VENV"
    fi
  fi
  local stamp="$VENV/.klink-installed"
  local want
  want="$(sha256sum "$KLINK_ROOT/pyproject.toml" | cut -d' ' -f1)-$extras"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing klink[$extras] into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$KLINK_ROOT[$extras]"
    echo "$want" >"$stamp"
  fi
}

# PostgreSQL's server binaries live outside PATH on Debian (/usr/lib/postgresql/N/bin).
ensure_postgres() {
  if command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    return 0
  fi
  apt_install postgresql
}

# The Hubot integration's packages (the real hubot, for its tests), installed from its lock
# file when missing or when the lock file changed.
ensure_node_packages() {
  ensure_command node nodejs
  ensure_command npm npm
  local dir="$KLINK_ROOT/integrations/hubot"
  local stamp="$dir/node_modules/.klink-installed"
  local want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing integrations/hubot's npm packages"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
  fi
}

# The web UI's browser tests: Debian's chromium (Playwright drives it; `playwright install`
# is not used) and axe-core from npm, pinned, in a folder the tests know (tests/web/browser.py).
AXE_VERSION=4.14.1
AXE_DIR="$KLINK_ROOT/.tmp/web-tests"
ensure_browser_tools() {
  ensure_command chromium chromium
  ensure_command npm npm
  if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ] ||
    ! grep -q "\"version\": \"$AXE_VERSION\"" "$AXE_DIR/node_modules/axe-core/package.json"; then
    say "installing axe-core@$AXE_VERSION into $AXE_DIR"
    mkdir -p "$AXE_DIR"
    npm install --prefix "$AXE_DIR" --no-save --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
  fi
}

ensure_system_packages() {
  ensure_command git git
  ensure_command haproxy haproxy
  ensure_command packer packer
  ensure_command wrk wrk
  # The canary's metrics on the local provider: Prometheus scrapes HAProxy's exporter.
  ensure_command prometheus prometheus
  ensure_postgres
  ensure_node_packages
  ensure_browser_tools
}
