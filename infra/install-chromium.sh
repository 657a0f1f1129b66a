#!/usr/bin/env bash
# Debian's headless Chromium, for the test that renders the click-to-chat widget in a real
# browser (tests/settings.rs). Nothing to do when `chromium` (or $CHROMIUM) is already there.
set -euo pipefail
if command -v "${CHROMIUM:-chromium}" >/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "install Chromium (or set CHROMIUM to a Chromium/Chrome binary): no apt-get here" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version
