#!/usr/bin/env bash
# Set up everything gisgrid needs on a fresh Debian/Ubuntu machine; a second run only checks.
#
#   scripts/bootstrap.sh demo   # PostgreSQL + PostGIS, .venv with gisgrid, front-end assets
#   scripts/bootstrap.sh test   # the same plus the test extras and Debian's Chromium
#
# PostgreSQL/PostGIS are installed from the distribution's packages (as root, or via sudo)
# unless GISGRID_DATABASE_URL points at an existing PostGIS server.
set -euo pipefail

mode=${1:-demo}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

say() { printf '\033[1mbootstrap:\033[0m %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 126
  fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 127
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return $?
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

cannot_install() {
  cat >&2 <<MSG
bootstrap: cannot install $1 here (not root, no password-less sudo, or no apt-get).
  Either install it yourself (Debian/Ubuntu: sudo apt-get install $2), or point gisgrid at
  any PostGIS server you already have, e.g. the postgis/postgis container image:
      export GISGRID_DATABASE_URL=postgresql+psycopg://user:password@host:5432/dbname
  and run this command again.
MSG
  exit 1
}

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
have_postgis() { ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; }

# 1. PostgreSQL + PostGIS (only for the embedded store)
if [ -z "${GISGRID_DATABASE_URL:-}" ]; then
  if [ -z "$(pg_bindir)" ]; then
    say "installing PostgreSQL from the distribution's packages"
    apt_install postgresql-common postgresql || cannot_install PostgreSQL "postgresql postgresql-<version>-postgis-3"
  fi
  if ! have_postgis; then
    ver=$(basename "$(dirname "$(pg_bindir)")")
    say "installing PostGIS for PostgreSQL $ver"
    apt_install "postgresql-$ver-postgis-3" || cannot_install PostGIS "postgresql-$ver-postgis-3"
  fi
  # Debian starts a system cluster on install; gisgrid runs its own private one instead.
else
  say "GISGRID_DATABASE_URL is set: using that PostGIS server, nothing to install for it"
fi

# 2. Python virtual environment with gisgrid
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || { apt_install python3 python3-venv python3-dev || cannot_install Python python3-venv; }
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_install python3-venv || cannot_install "Python's venv module" python3-venv
fi
[ -x .venv/bin/python ] || { say "creating .venv"; "$python" -m venv .venv; }

extras=""; [ "$mode" = test ] && extras="[dev]"
stamp=.venv/.gisgrid-installed
want="$mode $(cat setup.cfg constraints.txt pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] && ! { [ "$mode" = demo ] && grep -q "^test $(echo "$want" | cut -d' ' -f2)" "$stamp" 2>/dev/null; }; then
  say "installing gisgrid$extras into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".$extras"
  echo "$want" > "$stamp"
else
  say ".venv is up to date"
fi

# 3. Front-end assets (Leaflet and plugins) from the npm registry into the package
if ! command -v npm >/dev/null 2>&1; then
  say "installing Node.js and npm (for the map assets)"
  apt_install nodejs npm || cannot_install npm "nodejs npm"
fi
bash scripts/install-assets.sh

# 4. Test-only tools: Debian's Chromium for the browser tests
if [ "$mode" = test ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing Chromium (browser tests)"
  apt_install chromium || apt_install chromium-browser || cannot_install Chromium chromium
fi

say "ready ($mode)"
