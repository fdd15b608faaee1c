#!/usr/bin/env bash
# Runs one of the real-client tests (a node:test file in this folder) against gemma4 serve.
# Usage: run_js_test.sh BUILD_DIR GEMMA4_BIN (setup | TEST.mjs [browser])
#   setup: installs the pinned npm packages into BUILD_DIR/server-js (npm ci, redone only when
#          package-lock.json changes) and writes the synthetic test model there.
# Exit status 77 (CTest's skip) with a message when Node.js 20+, npm, the npm registry or (for the
# browser test) Chromium is not available.
set -euo pipefail
build=$1
bin=$2
what=$3
here=$(cd "$(dirname "$0")" && pwd)
dir=$build/server-js

skip() { echo "SKIP: $*"; exit 77; }

command -v node >/dev/null 2>&1 || skip "node is not installed (the real-client tests need Node.js 20+)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"
major=$(node -e 'console.log(process.versions.node.split(".")[0])')
[ "$major" -ge 20 ] || skip "Node.js $major is too old (20+ needed)"

if [ "$what" = setup ]; then
  mkdir -p "$dir"
  if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules" ]; then
    rm -rf "$dir/node_modules" "$dir/package-lock.json"
    cp "$here/package.json" "$here/package-lock.json" "$dir/"
    if ! (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); then
      rm -f "$dir/package-lock.json"
      skip "npm ci failed (is the npm registry reachable?)"
    fi
  fi
  [ -f "$dir/tiny.gguf" ] || "$bin" create --preset tiny --seed 7 -o "$dir/tiny.gguf"
  echo "npm packages and test model ready in $dir"
  exit 0
fi

[ -d "$dir/node_modules" ] && [ -f "$dir/tiny.gguf" ] || skip "the npm packages are not installed (see the server_js_setup test)"
if [ "${4:-}" = browser ]; then
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing Debian's chromium"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
        (apt-get update -qq >/dev/null 2>&1 &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1) || true
    fi
    [ -x /usr/bin/chromium ] || skip "/usr/bin/chromium is not installed (apt-get install chromium)"
  fi
fi
# The test files import the packages: run them from the folder that holds node_modules.
cp "$here/harness.mjs" "$here/$what" "$dir/"
cd "$dir"
GEMMA4_BIN="$bin" GEMMA4_TEST_MODEL="$dir/tiny.gguf" exec node --test --test-reporter=spec "$dir/$what"
