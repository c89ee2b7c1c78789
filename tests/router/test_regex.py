"""fastgw._core.regex: PCRE2 with match limits (the route regex engine)."""
from __future__ import annotations

import time

import pytest

from fastgw._core import regex


def test_catastrophic_backtracking_stops_at_the_match_limit() -> None:
    rx = regex.compile("/redos/(a+)+$")
    for n in (33, 1000, 8000):
        subject = b"/redos/" + b"a" * n + b"!"
        t0 = time.perf_counter()
        assert rx.status(subject, True) == -47      # PCRE2_ERROR_MATCHLIMIT
        assert time.perf_counter() - t0 < 0.05
        assert rx.search(subject, True) is None
    assert rx.search(b"/redos/aaaa", True) == ((0, 11), (7, 11))


def test_kong_named_group_syntaxes_and_spans() -> None:
    rx = regex.compile(r"/(?<a>x+)/(?P<b>y)?(z)")
    assert rx.groups == 3
    assert rx.groupindex == {"a": 1, "b": 2}
    assert rx.names == ("a", "b", None)
    assert rx.search(b"/xx/z", True) == ((0, 5), (1, 3), (-1, -1), (4, 5))


def test_anchored_and_unanchored() -> None:
    rx = regex.compile("/b")
    assert rx.search(b"/a/b", True) is None
    assert rx.search(b"/a/b") == ((2, 4),)


def test_caseless_and_lookarounds() -> None:
    assert regex.compile("windows|linux", True).search(b"Mozilla (X11; Linux)") is not None
    assert regex.compile("^/a(?=/)").search(b"/a/b") is not None
    assert regex.compile(r"^/(\w)\1$").search(b"/xx") is not None


def test_invalid_utf8_subject_is_not_an_error() -> None:
    rx = regex.compile("^/caf.$")
    assert rx.search("/café".encode(), True) is not None
    assert rx.status(b"/caf\xff\xfe", True) == 0


def test_refused_pattern_raises_regex_error() -> None:
    with pytest.raises(regex.RegexError) as ei:
        regex.compile("(abc")
    assert ei.value.message == "missing closing parenthesis"
    assert ei.value.offset == 4
    with pytest.raises(ValueError):
        regex.compile(r"a\C")     # PCRE2_NEVER_BACKSLASH_C


def test_compile_is_cached() -> None:
    assert regex.compile("/x/(\\d+)") is regex.compile("/x/(\\d+)")
    assert regex.compile("/x") is not regex.compile("/x", True)
