"""Checks a built fastgw wheel: what is inside it, and what installing it pulls in.

Usage:
    check_wheel.py WHEEL [--sdist SDIST] [--pyproject PYPROJECT]
                         [--install [--python PY] [--venv DIR]]

Rules:
- Contents: no generated or source files of the compiled core (.c, .cpp, .pyx, .pxi, .html
  annotations): they are build inputs, never shipped. Expected kinds are .so (the compiled core),
  .py, .pyi, .pxd (so other Cython code can cimport the core), py.typed, and the package data
  named in pyproject. A platform wheel must hold at least one extension module, and with --sdist
  every src/fastgw/_core/*.pyx of the sdist must come back as a compiled module (a wheel built
  from an sdist that lacks the .pyx files is silently pure Python otherwise).
- Metadata: the wheel's unconditional Requires-Dist equals pyproject's [project] dependencies.
- --install: a fresh venv, `pip install WHEEL`, then every installed distribution (besides pip
  and fastgw) must be in the transitive closure of fastgw's runtime dependencies, evaluated with
  that venv's own markers; nothing from the build (Cython, setuptools) may come along.
- Standard library only (plus pip's vendored `packaging` inside the venv), so the same file runs
  on the host, inside cibuildwheel and under qemu in the arm64 root.
Exit status 0 when every check passes; each failure is printed on its own line.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from email.parser import Parser
from pathlib import Path, PurePosixPath

# Build inputs and build by-products: never in a wheel.
FORBIDDEN_SUFFIXES = (".c", ".cpp", ".h", ".pyx", ".pxi", ".html", ".o")
# What a fastgw wheel is made of (anything else is reported, not failed: package data grows).
EXPECTED_SUFFIXES = (".so", ".py", ".pyi", ".pxd", ".typed", ".yml")
PACKAGE = "fastgw"
CORE = f"{PACKAGE}/_core/"
# Build-time only: finding one of these installed means the wheel's metadata leaks the build.
BUILD_ONLY = {"cython", "setuptools", "wheel"}


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_tags(wheel: Path) -> tuple[str, str, str]:
    """(python, abi, platform) tags from a wheel file name."""
    parts = wheel.name[: -len(".whl")].split("-")
    return parts[-3], parts[-2], parts[-1]


def ext_module_name(member: str) -> str | None:
    """'fastgw/_core/router.cpython-311-x86_64-linux-gnu.so' -> 'router' (None if not an ext)."""
    p = PurePosixPath(member)
    if p.suffix != ".so":
        return None
    return p.name.split(".", 1)[0]


def check_contents(wheel: Path, sdist: Path | None = None) -> list[str]:
    errors: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        meta_name = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
    payload = [n for n in names if ".dist-info/" not in n]

    kinds = Counter(PurePosixPath(n).suffix or PurePosixPath(n).name for n in payload)
    print(f"{wheel.name}: {len(payload)} files: "
          + ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())))
    for n in payload:
        if n.endswith(".so"):
            print(f"  ext  {n}")

    for n in payload:
        if n.endswith(FORBIDDEN_SUFFIXES):
            errors.append(f"forbidden file in wheel: {n}")
        elif n.startswith(f"{PACKAGE}.libs/"):
            continue   # native libraries auditwheel vendored (libnghttp2 for fastgw._core.h2)
        elif not n.startswith(f"{PACKAGE}/"):
            errors.append(f"file outside the {PACKAGE} package: {n}")
        elif not n.endswith(EXPECTED_SUFFIXES):
            print(f"  note: unexpected kind of file (not failed): {n}")
    if meta_name is None:
        errors.append("no .dist-info/METADATA")

    py, abi, plat = wheel_tags(wheel)
    exts = {m for m in (ext_module_name(n) for n in payload if n.startswith(CORE)) if m}
    if plat == "any" or abi == "none":
        errors.append(f"pure wheel ({py}-{abi}-{plat}): the compiled core was not built")
    elif not exts:
        errors.append("platform wheel without any fastgw._core extension module")
    if f"{PACKAGE}/py.typed" not in payload:
        errors.append(f"{PACKAGE}/py.typed missing")
    # A .pyi stub for a compiled module whose .so is missing means a module failed to build
    # (or was skipped) while its Python-visible API is still advertised.
    for n in payload:
        if n.startswith(CORE) and n.endswith(".pyi"):
            stem = PurePosixPath(n).stem
            if stem not in exts and f"{CORE}{stem}.py" not in payload:
                errors.append(f"stub {n} has no compiled module")

    if sdist is not None:
        with tarfile.open(sdist) as tf:
            pyx = {PurePosixPath(m).stem for m in tf.getnames()
                   if re.search(r"/src/fastgw/_core/[^/]+\.pyx$", m)}
        if not pyx:
            errors.append(f"{sdist.name} holds no src/fastgw/_core/*.pyx (see MANIFEST.in)")
        for stem in sorted(pyx - exts):
            errors.append(f"{stem}.pyx is in the sdist but not compiled into the wheel")
        print(f"  sdist {sdist.name}: {len(pyx)} .pyx, wheel: {len(exts)} extension modules")
    return errors


def _split_req(req: str) -> tuple[str, str, str]:
    """'PyYAML>=6.0 ; python_version < "4"' -> ('pyyaml', '>=6.0', 'python_version < "4"')."""
    req, _, marker = req.partition(";")
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)", req)
    assert m, req
    spec = ",".join(sorted(s.strip() for s in m.group(3).strip().strip("()").split(",") if s.strip()))
    return canonical(m.group(1)), spec, marker.strip()


def check_metadata(wheel: Path, pyproject: Path) -> list[str]:
    import tomllib  # Python >= 3.11; the metadata check runs on the build host

    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode())
    in_wheel = {_split_req(r) for r in meta.get_all("Requires-Dist") or []
                if "extra ==" not in r.partition(";")[2]}
    declared = {_split_req(r) for r in tomllib.loads(pyproject.read_text())["project"]["dependencies"]}
    errors = [f"Requires-Dist not declared in pyproject: {r}" for r in sorted(in_wheel - declared)]
    errors += [f"pyproject dependency missing from the wheel: {r}" for r in sorted(declared - in_wheel)]
    print(f"  metadata: {len(in_wheel)} runtime requirements, same as pyproject: {not errors}")
    return errors


# Runs inside the fresh venv: walks the installed metadata from fastgw's requirements.
_CLOSURE_SCRIPT = r"""
import json, re, sys
from importlib import metadata
from pip._vendor.packaging.requirements import Requirement

def canonical(n):
    return re.sub(r"[-_.]+", "-", n).lower()

dists = {canonical(d.metadata["Name"]): d for d in metadata.distributions()}
closure, missing = set(), []
todo = [(sys.argv[1], frozenset())]
while todo:
    name, extras = todo.pop()
    key = (canonical(name), extras)
    if key in closure:
        continue
    closure.add(key)
    dist = dists.get(key[0])
    if dist is None:
        missing.append(name)
        continue
    for raw in dist.requires or []:
        req = Requirement(raw)
        envs = [{"extra": e} for e in (extras | {""})]
        if req.marker is None or any(req.marker.evaluate(env) for env in envs):
            todo.append((req.name, frozenset(req.extras)))
print(json.dumps({"installed": sorted(dists), "closure": sorted({n for n, _ in closure}),
                  "missing": missing}))
"""


def check_install(wheel: Path, python: str, venv: Path | None) -> list[str]:
    tmp = None
    if venv is None:
        tmp = tempfile.TemporaryDirectory(prefix="fastgw-check-")
        venv = Path(tmp.name) / "venv"
    try:
        subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
        vpy = str(venv / "bin" / "python")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_CONSTRAINT")}
        # what the fresh venv holds before the wheel (pip; setuptools too before Python 3.12)
        before = json.loads(subprocess.run([vpy, "-c", _CLOSURE_SCRIPT, PACKAGE], check=True,
                                           env=env, capture_output=True, text=True).stdout)
        baseline = set(before["installed"])
        subprocess.run([vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        str(wheel)], check=True, env=env)
        out = subprocess.run([vpy, "-c", _CLOSURE_SCRIPT, PACKAGE], check=True, env=env,
                             capture_output=True, text=True).stdout
        got = json.loads(out)
    finally:
        if tmp is not None:
            tmp.cleanup()
    installed, closure = set(got["installed"]) - baseline, set(got["closure"])
    errors = [f"installed but not a runtime dependency of {PACKAGE}: {n}"
              for n in sorted(installed - closure)]
    errors += [f"build-only package installed: {n}" for n in sorted(installed & BUILD_ONLY)]
    errors += [f"dependency declared but not installed: {n}" for n in got["missing"]]
    print(f"  install: the wheel brought {len(installed)} distributions into a fresh venv "
          f"({', '.join(sorted(installed))}); closure of {PACKAGE}'s dependencies: "
          f"{len(closure)}; already there: {', '.join(sorted(baseline))}")
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--sdist", type=Path, help="sdist the wheel was built from")
    ap.add_argument("--pyproject", type=Path, help="compare Requires-Dist with its dependencies")
    ap.add_argument("--install", action="store_true", help="install into a fresh venv and check")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the fresh venv")
    ap.add_argument("--venv", type=Path, help="keep the fresh venv here (recreated)")
    args = ap.parse_args(argv)

    errors = check_contents(args.wheel, args.sdist)
    if args.pyproject:
        errors += check_metadata(args.wheel, args.pyproject)
    if args.install:
        errors += check_install(args.wheel.resolve(), args.python, args.venv)
    for e in errors:
        print(f"FAIL {e}")
    print(f"{args.wheel.name}: {'OK' if not errors else f'{len(errors)} problem(s)'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
