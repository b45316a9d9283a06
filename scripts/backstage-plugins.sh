#!/usr/bin/env bash
# drover - scripts/backstage-plugins.sh: install, type-check and test the
# Backstage plugins in backstage/ (an npm workspace: plugins/drover-backend
# and plugins/drover).
#
#   scripts/backstage-plugins.sh install     npm ci (cached), copy the sources
#   scripts/backstage-plugins.sh tsc         tsc --noEmit over both plugins
#   scripts/backstage-plugins.sh test [ARGS] jest (ARGS go to jest)
#   scripts/backstage-plugins.sh bundle OUT  the backend plugin as one CommonJS
#                                            file (Backstage and express left
#                                            to the backend that loads it)
#   scripts/backstage-plugins.sh dir         print the install directory
#
# npm ci runs into $DROVER_CACHE_DIR/backstage-plugins (git-ignored), again
# only when backstage/package-lock.json or a package.json changed; every
# command first copies the current sources there.  Needs Node 20 + npm.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SRC=$DROVER_ROOT/backstage
INST=$DROVER_CACHE_DIR/backstage-plugins
PLUGINS=(drover-backend drover)

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

# The hash of everything npm ci reads.
manifest_hash() {
  local p
  {
    cat "$SRC/package.json" "$SRC/package-lock.json" "$SRC/.npmrc"
    for p in "${PLUGINS[@]}"; do cat "$SRC/plugins/$p/package.json"; done
  } | sha256sum | cut -d' ' -f1
}

install() {
  local want have p d
  command -v node >/dev/null || die "node is not installed: run scripts/deps.sh"
  want=$(manifest_hash)
  have=$(cat "$INST/.lock-sha256" 2>/dev/null || true)
  if [ "$want" != "$have" ] || [ ! -d "$INST/node_modules" ]; then
    note "installing the backstage plugins' packages (npm ci, ~2-3 min)"
    rm -rf "$INST"
    mkdir -p "$INST"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$SRC/.npmrc" "$INST/"
    for p in "${PLUGINS[@]}"; do
      mkdir -p "$INST/plugins/$p"
      cp "$SRC/plugins/$p/package.json" "$INST/plugins/$p/"
    done
    (cd "$INST" && npm ci --ignore-scripts --no-audit --no-fund \
      >"$INST/npm.log" 2>&1) || die "npm ci failed: $(tail -n 5 "$INST/npm.log")"
    echo "$want" >"$INST/.lock-sha256"
  fi
  # the sources, fresh every time (the workspace links point into plugins/)
  cp "$SRC/tsconfig.json" "$SRC/jest.config.js" "$INST/"
  for d in jest e2e; do
    rm -rf "${INST:?}/$d"
    cp -r "$SRC/$d" "$INST/"
  done
  for p in "${PLUGINS[@]}"; do
    find "$INST/plugins/$p" -mindepth 1 -maxdepth 1 ! -name node_modules \
      ! -name package.json -exec rm -rf {} +
    (cd "$SRC/plugins/$p" && tar cf - --exclude=node_modules .) |
      (cd "$INST/plugins/$p" && tar xf -)
  done
}

case ${1:-} in
  install) install ;;
  tsc) install; cd "$INST" && exec node_modules/.bin/tsc --noEmit -p tsconfig.json ;;
  test) shift; install; cd "$INST" && exec node_modules/.bin/jest "$@" ;;
  bundle)
    [ -n "${2:-}" ] || die "bundle: name the output file"
    out=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
    install
    cd "$INST" && node -e '
      require("esbuild").buildSync({
        entryPoints: ["plugins/drover-backend/src/index.ts"],
        outfile: process.argv[1], bundle: true, platform: "node",
        format: "cjs", target: "node20", logLevel: "error",
        external: ["@backstage/*", "express", "express-promise-router"],
      });' "$out" ;;
  dir) echo "$INST" ;;
  *) usage; exit 2 ;;
esac
