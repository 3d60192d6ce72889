#!/bin/sh
# Installs Debian's Chromium if it is missing: the browser test drives it
# with playwright-core, which never downloads a browser of its own.
set -eu
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
	exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: installing Debian's chromium" >&2
if ! $SUDO apt-get install -y -q chromium >/dev/null; then
	$SUDO apt-get update -q >/dev/null
	$SUDO apt-get install -y -q chromium >/dev/null
fi
"$CHROMIUM" --version >&2
