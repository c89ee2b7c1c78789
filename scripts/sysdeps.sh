#!/usr/bin/env bash
# Installs the real servers the tests and benchmarks start on 127.0.0.1, from Debian's packages.
# Does nothing when they are all there already. Needs root (CI and the dev machines run as root).
set -euo pipefail
# --build-only: just what compiling the core needs (make build / make run call it)
need=()
if [ "${1:-}" != --build-only ]; then
command -v nginx >/dev/null || need+=(nginx-light)
command -v redis-server >/dev/null || need+=(redis-server)
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v curl >/dev/null || need+=(curl)
# database mode's tests start a private cluster with these (/usr/lib/postgresql/<ver>/bin)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# the dashboard tests' headless browser (Playwright drives this binary; it downloads none)
command -v chromium >/dev/null || need+=(chromium)
fi
# PCRE2 headers for the route regex engine (src/fastgw/_core/regex.pyx links libpcre2-8)
[ -f /usr/include/pcre2.h ] || need+=(libpcre2-dev)
# headers + library of the compiled HTTP/2 core (fastgw._core.h2)
[ -e /usr/include/nghttp2/nghttp2.h ] || need+=(libnghttp2-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "sysdeps: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
# The packages start system services; the tests start their own instances on other ports.
[ "${1:-}" = --build-only ] && exit 0
for svc in nginx redis-server haproxy postgresql; do
  (service "$svc" stop || true) >/dev/null 2>&1
done
