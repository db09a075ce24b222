#!/usr/bin/env bash
# Installs headless Chromium (Debian's "chromium" package) for the web
# console's browser test (services/roster/console_test.go, chromedp). Safe
# to run repeatedly: when a chromium binary is already there it changes
# nothing.
#
# CI should also export ROSTER_REQUIRE_CHROMIUM=1 so that the browser test
# fails, instead of skipping, if Chromium is still missing.
set -euo pipefail

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

for b in chromium chromium-browser; do
	if command -v "$b" >/dev/null; then
		echo "install-chromium: already installed: $(command -v "$b")"
		exit 0
	fi
done
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium
command -v chromium
