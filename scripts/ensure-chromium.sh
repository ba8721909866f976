#!/usr/bin/env bash
# Headless Chromium for the briefing's browser tests (tests/test_briefing.py).
# Quick when it is there; installed from Debian's packages when missing and we are root;
# otherwise a clear failure: the tests never skip the browser silently.
set -euo pipefail
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is missing and this is not root: run 'sudo apt-get install -y chromium' first" >&2
  exit 1
fi
echo "installing chromium (Debian package) for the briefing's browser tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
