#!/usr/bin/env bash
# The compiled core built with AddressSanitizer + UndefinedBehaviorSanitizer (FASTGW_SANITIZE=1)
# in a scratch copy of the tree (the tree's own build is untouched), then the tests that drive the
# C code hardest run against it: parser vectors and properties, the plugin kernels, the router.
#
# Usage: scripts/sanitize.sh [pytest args...]     (default: the suites below)
# Env:   PYTHON  the interpreter with fastgw's test dependencies (default: .venv/bin/python)
#
# Python itself is not instrumented, so leak detection is off (CPython keeps its arenas) and the
# sanitizer runtimes are preloaded; any ASan or UBSan report aborts the run with its stack.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$repo/.venv/bin/python}"
work="$(mktemp -d /tmp/fastgw-sanitize.XXXXXX)"
trap 'rm -rf "$work"' EXIT
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work")
cd "$work"
FASTGW_SANITIZE=1 FASTGW_BUILD_JOBS=1 "$py" setup.py -q build_ext --inplace
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if [ $# -eq 0 ]; then
  set -- tests/parser tests/native tests/plugins_engines/test_limiter.py tests/router -q
fi
PYTHONPATH="$work/src" "$py" -m pytest -p no:cacheprovider "$@"
