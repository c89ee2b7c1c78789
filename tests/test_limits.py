"""fastgw.limits: Limits from Python and from `--limit NAME=VALUE`; bad input is one clear
error naming the limit."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fastgw.limits import make, parse_item


def test_defaults_and_overrides() -> None:
    lim = make({"max_head": 16384, "client_body_timeout": 1500})
    assert lim.max_head == 16384 and lim.client_body_timeout == 1.5
    assert make(None).max_headers == 100
    assert make(lim) is lim
    assert lim.as_dict()["client_body_timeout"] == 1500


@pytest.mark.parametrize("text, message", [
    ("nope=1", "unknown limit 'nope'"),
    ("max_head", "expected NAME=VALUE"),
    ("max_head=big", "limit max_head: expected an integer"),
    ("underscores_in_headers=maybe", "expected true or false"),
])
def test_bad_items(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_item(text)


def test_out_of_range_names_the_limit() -> None:
    with pytest.raises(ValueError, match="limit max_headers: 100000 is outside"):
        make({"max_headers": 100000})


def test_parse_item_types() -> None:
    assert parse_item("underscores-in-headers=on") == ("underscores_in_headers", True)
    assert parse_item("max_buffered_body=1_048_576") == ("max_buffered_body", 1048576)


def test_cli_bad_limit_is_one_line_and_exit_1() -> None:
    p = subprocess.run([sys.executable, "-m", "fastgw", "run", "--limit", "max_head=-1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1   # every startup error: one line, exit 1 (Kong's)
    assert "limit max_head: -1 is outside" in p.stderr and "Traceback" not in p.stderr
