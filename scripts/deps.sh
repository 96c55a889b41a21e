#!/usr/bin/env bash
# Installs what seatflow's run and tests need beyond Go, on a fresh machine:
# npm (fetches the chDB engine library on first use), kcat (a non-Go Kafka
# client the tests use) and Chromium (the portal's browser tests drive it
# headless). Debian/Ubuntu with apt; elsewhere it says
# what to install.
set -euo pipefail

need=()
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	echo "installing ${need[*]} with apt-get" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
else
	echo "please install: ${need[*]} (no apt-get here)" >&2
	exit 1
fi
