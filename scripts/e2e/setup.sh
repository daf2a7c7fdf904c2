#!/usr/bin/env bash
# Installs what the end-to-end tests drive: Debian's chromium (for playwright-core) and
# code-server 4.100.3 (VS Code 1.100 in the browser) into .e2e/, following
# docs/vscode-e2e.md. code-server's ripgrep dependency downloads rg at install time from
# a host that may be unreachable, so Debian's rg is packed where that installer looks first.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD/.e2e
mkdir -p "$root"

if ! command -v chromium >/dev/null || ! command -v rg >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq chromium ripgrep libkrb5-dev >/dev/null
fi

if [ ! -x "$root/code-server/node_modules/.bin/code-server" ]; then
  export TMPDIR="$root/tmp"
  mkdir -p "$TMPDIR/vscode-ripgrep-cache-1.15.11" "$root/code-server"
  tar -czf "$TMPDIR/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$(dirname "$(command -v rg)")" rg
  (cd "$root/code-server" && echo '{"private":true}' > package.json && npm_config_yes=true npm install --no-audit --no-fund --unsafe-perm code-server@4.100.3 >/dev/null)
fi
echo "e2e: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), code-server $("$root/code-server/node_modules/.bin/code-server" --version | head -1)"
