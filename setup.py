"""Build the compiled core (src/fastgw/_core/*.pyx).

Rules:
- Cython is a build requirement pinned in pyproject.toml; this file checks the version again so a
  stray global Cython cannot produce a subtly different core.
- Cython warnings are errors. Generated .c files are build outputs: never committed, never shipped.
- FASTGW_BUILD_ONLY=router,balancer restricts the build to those modules (for parallel work on one
  tree); FASTGW_DEBUG=1 builds with -O0 -g and Cython's bounds checks; FASTGW_SANITIZE=1 builds
  with AddressSanitizer and UndefinedBehaviorSanitizer (scripts/sanitize.sh runs the tests so).
"""
import os
import sys
from pathlib import Path

from setuptools import Extension, setup

CYTHON_RANGE = ((3, 0, 11), (3, 4, 0))  # keep in sync with pyproject.toml [build-system]
# native libraries a module links (Debian packages in scripts/sysdeps.sh; wheels bundle them
# with auditwheel). Only regex.pyx calls PCRE2 (the router reaches it through regex.pxd) and only
# h2.pyx nghttp2.
LIBRARIES = {"regex": ["pcre2-8"], "h2": ["nghttp2"]}


def _check_cython():
    import Cython

    ver = tuple(int(p) for p in Cython.__version__.split(".")[:3] if p.isdigit())
    lo, hi = CYTHON_RANGE
    if not (lo <= ver < hi):
        raise SystemExit(f"fastgw needs Cython >={lo} and <{hi}, found {Cython.__version__}")


def extensions():
    _check_cython()
    from Cython.Build import cythonize
    from Cython.Compiler import Options

    Options.warning_errors = True  # "Warnings are errors" (STYLE.md)
    debug = os.environ.get("FASTGW_DEBUG") == "1"
    sanitize = os.environ.get("FASTGW_SANITIZE") == "1"
    # msgspec's MSGSPEC_SANITIZE idea: the same sources, instrumented; Python itself is not
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
           "-fno-omit-frame-pointer"] if sanitize else []
    only = {m for m in os.environ.get("FASTGW_BUILD_ONLY", "").split(",") if m}
    core = Path("src/fastgw/_core")
    sources = sorted(core.glob("*.pyx"))
    if not sources:
        # an sdist without its .pyx would quietly build a pure-Python wheel with no core
        raise SystemExit("fastgw: no src/fastgw/_core/*.pyx found: the compiled core is missing")
    exts = []
    for pyx in sources:
        if only and pyx.stem not in only:
            continue
        exts.append(
            Extension(
                f"fastgw._core.{pyx.stem}",
                [str(pyx)],
                libraries=LIBRARIES.get(pyx.stem, []),
                extra_compile_args=(["-O0", "-g"] if debug else ["-O1", "-g"] if sanitize else ["-O2"])
                + ["-Wall", "-Werror", "-Wno-unused-function", "-Wno-unreachable-code"] + san,
                extra_link_args=san,
            )
        )
    return cythonize(
        exts,
        language_level=3,
        compiler_directives={
            "boundscheck": debug or sanitize,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
            "freethreading_compatible": False,
        },
        annotate=os.environ.get("FASTGW_ANNOTATE") == "1",
        force=os.environ.get("FASTGW_ANNOTATE") == "1",  # re-annotate unchanged sources
        nthreads=int(os.environ.get("FASTGW_BUILD_JOBS", "0")) or 0,
    )


# An sdist ships the .pyx sources (MANIFEST.in), not generated C: don't cythonize for it (nor
# for the metadata step before it), so no .c lands in the tree.
_SDIST_ONLY = sys.argv[1:2] in (["sdist"], ["egg_info"])

setup(ext_modules=[] if _SDIST_ONLY else extensions())
