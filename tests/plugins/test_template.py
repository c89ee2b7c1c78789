"""request-transformer's template language (plugins/_template.py): Kong's documented
expressions render as Kong renders them, and nothing in a template reaches Python."""
from __future__ import annotations

import pytest

from fastgw.plugins._template import MAX_FORMAT_WIDTH, TemplateError, compile_template

ENV = {"headers": {"host": "a.test", "x-foo": ["1", "2"], "user-agent": "curl"},
       "query_params": {"q": "value", "flag": True},
       "uri_captures": {0: "/users/42", 1: "42", "id": "42"},
       "shared": {"version": "1.2.3"}}


@pytest.mark.parametrize("src, out", [
    ("plain", "plain"),
    ("$(headers.host)", "a.test"),
    ('$(headers["user-agent"])', "curl"),
    ("$(headers['user-agent'])", "curl"),
    ("$(query_params.q)", "value"),
    ("$(query_params.missing)", ""),
    ("$(query_params.missing or 'dflt')", "dflt"),
    ("$(uri_captures.id)", "42"),
    ("$(uri_captures[1])", "42"),
    ("/r$(uri_captures[0])", "/r/users/42"),
    ("$(shared.version)", "1.2.3"),
    ('$(type(headers["x-foo"]) == "table" and headers["x-foo"][1] .. "-first" or headers["x-foo"])',
     "1-first"),
    ("$(type(headers.host))", "string"),
    ("$(string.sub(query_params.q, 1, 3))", "val"),
    ("$(string.upper(headers.host))", "A.TEST"),
    ("$(string.format('u:%s;n:%d', query_params.q, 7))", "u:value;n:7"),
    ("$(uri_captures.id + 1)", "43"),
    ("$(not query_params.missing)", "true"),
    ("$('$(uri_captures.id)')", "$(uri_captures.id)"),
    ("a$(headers.host)b$(query_params.q)c", "aa.testbvaluec"),
    ("$(#headers['x-foo'])", "2"),
])
def test_renders_kong_expressions(src: str, out: str) -> None:
    assert compile_template(src).render(ENV) == out


@pytest.mark.parametrize("src", [
    "$(shared.written = true)",   # assignment: not an expression
    "$(headers.host",             # unbalanced
    "$(headers.host ; 1)",
    "$(function() end)",
])
def test_syntax_errors_are_config_errors(src: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(src)


@pytest.mark.parametrize("src", [
    "$(10 * uri_captures.missing)",        # arithmetic on nil, as Kong's runtime error
    "$(ERROR())",                          # unknown function
    "$(require('os'))",                    # no modules
    "$(headers.host.__class__)",           # no attribute access on values
    "$(__import__('os'))",
    "$(string.rep('a', 100000))",          # bounded output
    f"$(string.format('%{MAX_FORMAT_WIDTH + 1}s', 'x'))",
    "$(headers['x-foo'] .. 'x')",          # concatenating a table
])
def test_unsafe_or_failing_expressions_raise_render_errors(src: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(src).render(ENV)


def test_names_outside_the_environment_are_nil() -> None:
    assert compile_template("$(os or 'no os')").render(ENV) == "no os"
    assert compile_template("$(_G or 'no globals')").render(ENV) == "no globals"
