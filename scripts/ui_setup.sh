#!/usr/bin/env bash
# Installs what the browser test (tests_ui/) needs from the machine: Debian's Chromium and fonts.
# Playwright itself comes from PyPI (make test-ui); no browser is ever downloaded from elsewhere,
# the tests launch /usr/bin/chromium. Idempotent: does nothing when Chromium is already there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "Installing Debian's chromium for the browser test (apt-get)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-liberation >/dev/null
chromium --version
