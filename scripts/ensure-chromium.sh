#!/usr/bin/env bash
# Headless Chromium and a Chinese font for the briefing's browser tests (tests/test_briefing.py).
# Quick when both are there; installed from Debian's packages when missing and we are root;
# otherwise a clear failure: the tests never skip the browser silently.
set -euo pipefail
have_browser() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
have_cjk_font() { [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; }
if have_browser && have_cjk_font; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium or a Chinese font is missing and this is not root:" \
       "run 'sudo apt-get install -y chromium fonts-wqy-microhei' first" >&2
  exit 1
fi
echo "installing chromium and fonts-wqy-microhei (Debian packages) for the briefing's browser tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
have_browser && have_cjk_font
