#!/usr/bin/env bash
# Install the front-end assets (Leaflet and the plugins the maps use) from the npm registry and
# copy just their dist files into gisgrid/web/static/vendor/<package>/, so that no page or
# report loads anything from a CDN at run time.
#
# The packages and their exact versions are pinned in package.json + package-lock.json; which
# files are copied is listed under "gisgridAssets" in package.json. Idempotent: when the vendored
# copy matches the lock file (a stamp records its hash) a second run only checks.
#
# Usage: scripts/install-assets.sh [--force]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/gisgrid/web/static/vendor"
stamp="$vendor/.installed-from"
force=0
[[ "${1:-}" == "--force" ]] && force=1

die() { echo "install-assets: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die \
  "node and npm are needed to install the map assets (Debian/Ubuntu: apt-get install nodejs npm)"

cd "$root"
want="$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)"

# The manifest: one "<package>\t<path inside the package>" line per file or directory to copy.
manifest() {
  node -e '
    const assets = require(process.argv[1]).gisgridAssets;
    for (const [pkg, paths] of Object.entries(assets))
      for (const p of paths) console.log(pkg + "\t" + p);
  ' "$root/package.json"
}

complete() {
  local pkg path
  while IFS=$'\t' read -r pkg path; do
    [[ -e "$vendor/$pkg/$(basename "$path")" ]] || return 1
  done < <(manifest)
}

if [[ $force -eq 0 && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && complete; then
  echo "install-assets: vendored assets are up to date ($vendor)"
  exit 0
fi

if [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
else
  npm install --no-audit --no-fund --ignore-scripts --loglevel=error
fi

mkdir -p "$root/gisgrid/web/static"
tmp="$(mktemp -d "$root/gisgrid/web/static/.vendor.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
while IFS=$'\t' read -r pkg path; do
  src="node_modules/$pkg/$path"
  [[ -e "$src" ]] || die "$src is missing: package.json lists it under gisgridAssets"
  mkdir -p "$tmp/$pkg"
  cp -R "$src" "$tmp/$pkg/"
done < <(manifest)
# Record the installed versions next to the files (shown by the web app, read by nobody else).
node -e '
  const assets = require(process.argv[1]).gisgridAssets;
  const out = {};
  for (const pkg of Object.keys(assets))
    out[pkg] = require(process.argv[2] + "/node_modules/" + pkg + "/package.json").version;
  console.log(JSON.stringify(out, null, 2));
' "$root/package.json" "$root" > "$tmp/versions.json"
echo "$want" > "$tmp/.installed-from"

rm -rf "$vendor"
mv "$tmp" "$vendor"
trap - EXIT
echo "install-assets: installed $(manifest | cut -f1 | sort -u | wc -l) packages into $vendor"
