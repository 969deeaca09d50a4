#!/usr/bin/env bash
# Chromium for the chat-page test in headless mode. Playwright drives the system's browser, so
# nothing is downloaded by the test tools themselves. Installs Debian's package when missing.
set -euo pipefail

if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then
  exit 0
fi
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No Chromium found and no apt-get to install it: install Chromium, or set CHROMIUM_PATH." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "Installing Chromium (Debian package) for the chat-page browser test..."
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
