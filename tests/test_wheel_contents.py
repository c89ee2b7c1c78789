"""Wheel contents: the checker of wheels/check_wheel.py on synthetic wheels, and, when this suite
runs against an installed wheel (wheels/build.sh, cibuildwheel), the installed package itself."""
from __future__ import annotations

import importlib.util
import io
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

CHECKER = Path(__file__).resolve().parents[1] / "wheels" / "check_wheel.py"


@pytest.fixture(scope="module")
def cw():
    if not CHECKER.exists():
        pytest.skip(f"{CHECKER} not next to this tests/ directory")
    spec = importlib.util.spec_from_file_location("check_wheel", CHECKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


METADATA = "Metadata-Version: 2.4\nName: fastgw\nVersion: 0.1.0\n{reqs}\n"


def make_wheel(tmp: Path, files: list[str], tag: str = "cp311-cp311-manylinux_2_17_x86_64",
               reqs: list[str] = ()) -> Path:
    whl = tmp / f"fastgw-0.1.0-{tag}.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for f in files:
            zf.writestr(f, b"x")
        meta = METADATA.format(reqs="\n".join(f"Requires-Dist: {r}" for r in reqs))
        zf.writestr("fastgw-0.1.0.dist-info/METADATA", meta)
        zf.writestr("fastgw-0.1.0.dist-info/RECORD", "")
    return whl


def make_sdist(tmp: Path, pyx: list[str]) -> Path:
    sd = tmp / "fastgw-0.1.0.tar.gz"
    with tarfile.open(sd, "w:gz") as tf:
        for name in [f"fastgw-0.1.0/src/fastgw/_core/{p}.pyx" for p in pyx] + ["fastgw-0.1.0/setup.py"]:
            info = tarfile.TarInfo(name)
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    return sd


GOOD = [
    "fastgw/__init__.py",
    "fastgw/py.typed",
    "fastgw/_core/__init__.py",
    "fastgw/_core/py.typed",
    "fastgw/_core/consts.pxd",
    "fastgw/_core/router.pxd",
    "fastgw/_core/router.pyi",
    "fastgw/_core/router.cpython-311-x86_64-linux-gnu.so",
]


def test_good_wheel_passes(cw, tmp_path):
    assert cw.check_contents(make_wheel(tmp_path, GOOD), make_sdist(tmp_path, ["router"])) == []


@pytest.mark.parametrize("bad", ["fastgw/_core/router.c", "fastgw/_core/router.pyx",
                                 "fastgw/_core/router.html", "fastgw/_core/router.pxi"])
def test_sources_and_annotations_fail(cw, tmp_path, bad):
    errors = cw.check_contents(make_wheel(tmp_path, GOOD + [bad]))
    assert errors == [f"forbidden file in wheel: {bad}"]


def test_pure_wheel_fails(cw, tmp_path):
    files = [f for f in GOOD if not f.endswith(".so")]
    errors = cw.check_contents(make_wheel(tmp_path, files, tag="py3-none-any"))
    assert any("pure wheel" in e for e in errors), errors
    assert any("router.pyi has no compiled module" in e for e in errors), errors


def test_pyx_of_sdist_missing_from_wheel_fails(cw, tmp_path):
    errors = cw.check_contents(make_wheel(tmp_path, GOOD), make_sdist(tmp_path, ["router", "proxy"]))
    assert errors == ["proxy.pyx is in the sdist but not compiled into the wheel"]


def test_sdist_without_pyx_fails(cw, tmp_path):
    errors = cw.check_contents(make_wheel(tmp_path, GOOD), make_sdist(tmp_path, []))
    assert any("holds no src/fastgw/_core/*.pyx" in e for e in errors), errors


def test_files_outside_the_package_fail(cw, tmp_path):
    errors = cw.check_contents(make_wheel(tmp_path, GOOD + ["tests/test_x.py"]))
    assert errors == ["file outside the fastgw package: tests/test_x.py"]


def test_requirement_normalisation(cw):
    assert cw._split_req("PyYAML>=6.0") == ("pyyaml", ">=6.0", "")
    assert cw._split_req("prometheus_client (>=0.19,<1)") == ("prometheus-client", "<1,>=0.19", "")
    assert cw._split_req('uvloop>=0.19; sys_platform != "win32"') == (
        "uvloop", ">=0.19", 'sys_platform != "win32"')


def test_metadata_must_match_pyproject(cw, tmp_path):
    pytest.importorskip("tomllib")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "fastgw"\ndependencies = ["uvloop>=0.19", "PyYAML>=6.0"]\n')
    same = make_wheel(tmp_path, GOOD, reqs=["uvloop>=0.19", "pyyaml>=6.0",
                                            'pytest>=8; extra == "test"'])
    assert cw.check_metadata(same, pyproject) == []
    extra = make_wheel(tmp_path, GOOD, reqs=["uvloop>=0.19", "pyyaml>=6.0", "Cython>=3"])
    assert cw.check_metadata(extra, pyproject) == [
        "Requires-Dist not declared in pyproject: ('cython', '>=3', '')"]


def _installed_from_wheel() -> Path | None:
    import fastgw

    pkg = Path(fastgw.__file__).resolve().parent
    libs = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    return pkg if any(lib in pkg.parents for lib in libs) else None


def test_installed_package_has_no_sources():
    """Runs for real only against an installed wheel; in the source tree .c/.pyx are expected."""
    pkg = _installed_from_wheel()
    if pkg is None:
        pytest.skip("fastgw is imported from a source tree (editable), not from a wheel")
    core = pkg / "_core"
    shipped = sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*")
                     if p.suffix in (".c", ".cpp", ".pyx", ".pxi", ".html", ".o"))
    assert shipped == []
    exts = {p.name.split(".", 1)[0] for p in core.glob("*.so")}
    assert exts, "no compiled modules installed"
    stubs = {p.stem for p in core.glob("*.pyi")}
    assert stubs <= exts | {p.stem for p in core.glob("*.py")}, f"stubs without modules: {stubs - exts}"
    assert (pkg / "py.typed").exists()
    # every compiled module loads in this interpreter (ABI tag and manylinux repair are right)
    for name in sorted(exts):
        __import__(f"fastgw._core.{name}")
        assert sys.modules[f"fastgw._core.{name}"].__file__.startswith(str(core))
