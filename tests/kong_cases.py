"""Data-driven cases translated from Kong's spec suites, and their runner.

A Case is one `it(...)` of a Kong spec (named by `src`, "file.lua:line"): an optional
declarative document loaded first through `POST /config` of a real fastgw process, then
Steps, each a request to the Admin API (`admin=True`) or the proxy, with what Kong's spec
expects: the status, a body that must contain the given JSON (`body`, recursively: dicts
are subsets, lists are equal element by element, `ANY` matches anything present, `ABSENT`
asserts a key is missing), exact text (`text`), response headers (None = must be absent), and
for proxied requests what the upstream received (`upstream`: headers, query, path, json body).

A value `"$name"` in a later step's path or body refers to `saved["name"]`, filled by a
step's `save={"name": "id"}` from its response body (Kong's specs chain ids the same way).
Cases Kong runs that fastgw deliberately answers differently are marked `deviation=` with
the reason; they are reported, skipped, and listed in docs/kong-compatibility.md.
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

HOST = "127.0.0.1"


class _Any:
    def __repr__(self) -> str:
        return "ANY"


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ANY = _Any()
ABSENT = _Absent()


class Re:
    """A string that must match this regular expression entirely."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __repr__(self) -> str:
        return f"Re({self.pattern!r})"


@dataclasses.dataclass
class Step:
    method: str
    path: str
    json: Any = None
    form: dict[str, Any] | list[tuple[str, str]] | None = None
    multipart: list[tuple[str, str]] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    admin: bool = True
    status: int | None = None
    body: Any = None
    text: str | None = None
    contains: list[str] = dataclasses.field(default_factory=list)
    resp_headers: dict[str, str | None] = dataclasses.field(default_factory=dict)
    upstream: dict[str, Any] | None = None
    save: dict[str, str] = dataclasses.field(default_factory=dict)
    sleep: float = 0.0


@dataclasses.dataclass
class Case:
    name: str
    src: str
    steps: list[Step]
    config: dict[str, Any] | None = None
    deviation: str | None = None
    # response headers the upstream adds to its answers during this case
    upstream_headers: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.src}:{self.name}"


def _sub(value: Any, saved: dict[str, Any]) -> Any:
    if isinstance(value, str):
        for k, v in saved.items():
            value = value.replace("$" + k, str(v))
        return value
    if isinstance(value, dict):
        return {k: _sub(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_sub(v, saved) for v in value]
    if isinstance(value, tuple):
        return tuple(_sub(v, saved) for v in value)
    return value


def match(expected: Any, got: Any, path: str = "$") -> list[str]:
    """Differences between an expectation and a JSON value (empty = it matches)."""
    if expected is ANY:
        return []
    if isinstance(expected, Re):
        import re
        if isinstance(got, str) and re.fullmatch(expected.pattern, got):
            return []
        return [f"{path}: expected {expected!r}, got {got!r}"]
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected an object, got {got!r}"]
        out = []
        for k, v in expected.items():
            if v is ABSENT:
                if k in got:
                    out.append(f"{path}.{k}: expected absent, got {got[k]!r}")
            elif k not in got:
                out.append(f"{path}.{k}: missing")
            else:
                out += match(v, got[k], f"{path}.{k}")
        return out
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{path}: expected {expected!r}, got {got!r}"]
        out = []
        for i, (e, g) in enumerate(zip(expected, got)):
            out += match(e, g, f"{path}[{i}]")
        return out
    if expected != got or type(expected) is not type(got) and not (
            isinstance(expected, (int, float)) and isinstance(got, (int, float))
            and not isinstance(got, bool)):
        return [f"{path}: expected {expected!r}, got {got!r}"]
    return []


def request(port: int, step: Step, saved: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    path = _sub(step.path, saved)
    headers = dict(_sub(step.headers, saved))
    body: bytes | None = None
    if step.json is not None:
        body = json.dumps(_sub(step.json, saved)).encode()
        headers.setdefault("Content-Type", "application/json")
    elif step.form is not None:
        body = urlencode(_sub(step.form, saved), doseq=True).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif step.multipart is not None:
        b = uuid.uuid4().hex
        parts = b"".join(
            f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
            + str(_sub(v, saved)).encode() + b"\r\n" for k, v in step.multipart)
        body = parts + f"--{b}--\r\n".encode()
        headers.setdefault("Content-Type", f"multipart/form-data; boundary={b}")
    elif step.raw is not None:
        body = step.raw
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(step.method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        hdrs: dict[str, str] = {}
        for k, v in resp.getheaders():  # repeated lines joined as one field (RFC 9110 5.3)
            k = k.lower()
            hdrs[k] = f"{hdrs[k]}, {v}" if k in hdrs else v
        return resp.status, hdrs, data
    finally:
        conn.close()


def check_step(step: Step, status: int, headers: dict[str, str], data: bytes,
               upstream_req: Any | None, saved: dict[str, Any]) -> list[str]:
    errs: list[str] = []
    if step.status is not None and status != step.status:
        errs.append(f"status: expected {step.status}, got {status} ({data[:300]!r})")
    doc: Any = None
    if step.body is not None or step.save:
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            errs.append(f"body is not JSON: {data[:200]!r}")
    if step.body is not None and doc is not None:
        errs += match(_sub(step.body, saved), doc)
    if step.text is not None and data.decode("utf-8", "replace") != step.text:
        errs.append(f"text: expected {step.text!r}, got {data[:200]!r}")
    for frag in step.contains:
        if frag not in data.decode("utf-8", "replace"):
            errs.append(f"body lacks {frag!r}")
    for k, v in step.resp_headers.items():
        got = headers.get(k.lower())
        if v is None:
            if got is not None:
                errs.append(f"header {k}: expected absent, got {got!r}")
        elif isinstance(v, (Re, _Any)):
            if got is None or match(v, got):
                errs.append(f"header {k}: expected {v!r}, got {got!r}")
        elif got != _sub(v, saved):
            errs.append(f"header {k}: expected {v!r}, got {got!r}")
    if step.upstream is not None:
        if upstream_req is None:
            errs.append("upstream: no request reached the upstream")
        else:
            errs += _check_upstream(step.upstream, upstream_req)
    elif not step.admin and step.status is not None and step.status >= 400 and \
            upstream_req is not None:
        errs.append(f"upstream: a rejected request reached it ({upstream_req.target})")
    for name, key in step.save.items():
        saved[name] = _dig(doc, key)
    return errs


def _dig(doc: Any, key: str) -> Any:
    """`"data.0.id"` -> doc["data"][0]["id"] (None when a step is missing)."""
    for part in key.split("."):
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


def _check_upstream(exp: dict[str, Any], req: Any) -> list[str]:
    errs = []
    for k, v in exp.get("headers", {}).items():
        got = req.header_all(k)
        want = v if isinstance(v, list) or v is None else [v]
        if want is None:
            if got:
                errs.append(f"upstream header {k}: expected absent, got {got!r}")
        elif match(want, got):
            errs.append(f"upstream header {k}: expected {want!r}, got {got!r}")
    if "query_raw" in exp and req.query != exp["query_raw"]:
        errs.append(f"upstream query: expected {exp['query_raw']!r}, got {req.query!r}")
    if "path" in exp and req.path != exp["path"]:
        errs.append(f"upstream path: expected {exp['path']!r}, got {req.path!r}")
    if "method" in exp and req.method != exp["method"]:
        errs.append(f"upstream method: expected {exp['method']!r}, got {req.method!r}")
    if "query" in exp:
        from urllib.parse import parse_qs
        got_q = {k: v if len(v) > 1 else v[0]
                 for k, v in parse_qs(req.query, keep_blank_values=True).items()}
        errs += [f"upstream query {e}" for e in match(exp["query"], got_q)]
    if "json" in exp:
        try:
            got_b = json.loads(req.body or b"null")
        except ValueError:
            return errs + [f"upstream body is not JSON: {req.body[:200]!r}"]
        errs += [f"upstream body {e}" for e in match(exp["json"], got_b)]
    if "form" in exp:
        from urllib.parse import parse_qs
        got_f = {k: v if len(v) > 1 else v[0]
                 for k, v in parse_qs((req.body or b"").decode(), keep_blank_values=True).items()}
        errs += [f"upstream form {e}" for e in match(exp["form"], got_f)]
    if "body_lacks" in exp and exp["body_lacks"].encode() in (req.body or b""):
        errs.append(f"upstream body has {exp['body_lacks']!r}: {req.body[:200]!r}")
    if "body_contains" in exp and exp["body_contains"].encode() not in (req.body or b""):
        errs.append(f"upstream body lacks {exp['body_contains']!r}: {req.body[:200]!r}")
    return errs


def load_config(admin_port: int, doc: dict[str, Any]) -> None:
    doc = {"_format_version": "3.0", **doc}
    st = Step("POST", "/config", json=doc)
    status, _, data = request(admin_port, st, {})
    assert status == 201, f"POST /config: {status} {data[:500]!r}"


def run_case(case: Case, admin_port: int, proxy_port: int, upstream: Any,
             base_config: dict[str, Any] | None = None) -> list[str]:
    load_config(admin_port, case.config or base_config or {})
    saved: dict[str, Any] = {}
    errs: list[str] = []
    for i, st in enumerate(case.steps):
        if st.sleep:
            time.sleep(st.sleep)
        if upstream is not None:
            upstream.clear()
        status, headers, data = request(admin_port if st.admin else proxy_port, st, saved)
        up = None
        if upstream is not None and not st.admin:
            reqs = upstream.requests
            up = reqs[-1] if reqs else None
        errs += [f"step {i} {st.method} {st.path}: {e}"
                 for e in check_step(st, status, headers, data, up, saved)]
    return errs


def flatten_form(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A JSON body in Kong's form conventions: `a.b=`, `a[]=`; null -> empty value."""
    out: list[tuple[str, str]] = []
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out += flatten_form(v, key)
        elif isinstance(v, list):
            out += [(f"{key}[]", _scalar(x)) for x in v]
        else:
            out.append((key, _scalar(v)))
    return out


def _scalar(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def enc_json(method: str, path: str, data: Any = None, **kw: Any) -> Step:
    return Step(method, path, json=data, **kw)


def enc_form(method: str, path: str, data: Any = None, **kw: Any) -> Step:
    return Step(method, path, form=flatten_form(data or {}), **kw)


def enc_multipart(method: str, path: str, data: Any = None, **kw: Any) -> Step:
    return Step(method, path, multipart=flatten_form(data or {}), **kw)


ENCODINGS = {"json": enc_json, "form": enc_form, "multipart": enc_multipart}


def content_types(name: str, src: str, build: Any, *, only: tuple[str, ...] = (
        "json", "form", "multipart"), config: dict[str, Any] | None = None) -> list[Case]:
    """Kong's it_content_types: the same case with each request body encoding."""
    return [Case(f"{name} [{ct}]", src, build(ENCODINGS[ct]), config=config) for ct in only]
