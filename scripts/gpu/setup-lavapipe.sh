#!/usr/bin/env bash
# Installs a software Vulkan GPU, Mesa's lavapipe, so that the WebGPU tests have an adapter on a
# machine without a GPU (README: "GPUs"). Debian bookworm's own Mesa (22.3) is refused by Dawn
# ("Vulkan shaderUniform*ArrayDynamicIndexing required"); the 25.0 build from bookworm-backports works.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ "$codename" != bookworm ]; then
  echo "lavapipe: this script knows Debian bookworm only (found '${codename:-unknown}'): install Mesa >= 25 with its Vulkan drivers yourself" >&2
  exit 1
fi
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
    "${sudo[@]}" tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
echo "lavapipe: mesa-vulkan-drivers $(dpkg-query -W -f '${Version}' mesa-vulkan-drivers)"
