"""Bounded YAML loading: the alias bomb is refused before any object is built (fast, small),
through the loader, declarative files, `fastgw check -c`, and POST /config."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fastgw.config import declarative, yaml_load
from fastgw.config.errors import ConfigError


def alias_bomb(levels: int = 9) -> str:
    # 9 levels of 9 aliases: ~9^9 = 387 million nodes as a tree, ~450 bytes of text
    lines = ['_format_version: "3.0"', 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol",'
                                       '"lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly() -> None:
    text = alias_bomb()
    assert len(text) < 600
    t0 = time.perf_counter()
    with pytest.raises(yaml_load.YamlLimitError, match="too many aliases"):
        yaml_load.safe_load(text)
    assert time.perf_counter() - t0 < 0.5


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(yaml_load.YamlLimitError, match="recursive alias"):
        yaml_load.safe_load("a: &x [1, *x]\n")


def test_document_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_load, "MAX_DOCUMENT_BYTES", 100)
    with pytest.raises(yaml_load.YamlLimitError, match="document too large: more than 100 "):
        yaml_load.safe_load("#" * 101)
    yaml_load.safe_load("#" * 100)


def test_ordinary_aliases_still_work() -> None:
    doc = yaml_load.safe_load("base: &b {host: h, port: 80}\nx: *b\ny: {<<: *b, port: 81}\n")
    assert doc == {"base": {"host": "h", "port": 80}, "x": {"host": "h", "port": 80},
                   "y": {"host": "h", "port": 81}}
    # expansion within the floor is allowed whatever its ratio
    small = "a: &a [1, 2, 3]\nb: [" + ", ".join(["*a"] * 1000) + "]\n"
    assert len(yaml_load.safe_load(small)["b"]) == 1000


def test_unsafe_tags_are_refused() -> None:
    import yaml
    with pytest.raises(yaml.YAMLError):
        yaml_load.safe_load("!!python/object/apply:os.system ['true']\n")


def test_declarative_text_gives_a_config_error() -> None:
    with pytest.raises(ConfigError) as ei:
        declarative.load_text(alias_bomb(), source="kong.yml")
    assert "too many aliases" in str(ei.value)


def test_check_command_prints_one_line(tmp_path) -> None:
    path = tmp_path / "kong.yml"
    path.write_text(alias_bomb())
    t0 = time.monotonic()
    for argv in (["check", str(path)], ["run", "-c", str(path), "--listen", "127.0.0.1:0"]):
        p = subprocess.run([sys.executable, "-m", "fastgw", *argv],
                           capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        assert p.returncode != 0, argv
        assert "too many aliases" in out, (argv, out)
        assert "Traceback" not in out, (argv, out)
    assert time.monotonic() - t0 < 30


def test_admin_post_config_answers_400() -> None:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "admin"))
    from admin_helpers import Client

    c = Client()
    t0 = time.perf_counter()
    status, body = c.call("POST", "/config", raw=alias_bomb().encode(), ctype="text/yaml")
    assert time.perf_counter() - t0 < 0.5
    assert status == 400
    assert "too many aliases" in body["message"]
    assert c.applied == []
