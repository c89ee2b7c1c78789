"""Kong's `entity_checks` of each entity schema, as data: `GET /schemas/{entity}` shows them
(kong/db/schema/entities/*.lua through api_helpers.schema_to_jsonable: functions dropped) and
`evaluate` applies the `conditional` and `distinct` ones with Kong's error shapes
(kong/db/schema/init.lua: the record gets "failed conditional validation given value of
field '<if_field>'" under `@entity`, the field its own message). The model (config/model.py)
evaluates the upstream checks here; the other entities' rules are coded there.
"""
from __future__ import annotations

import re
from typing import Any


def _cond(if_field: str, if_match: dict[str, Any], then_field: str,
          then_match: dict[str, Any], then_err: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"if_field": if_field, "if_match": if_match,
                         "then_field": then_field, "then_match": then_match}
    if then_err:
        c["then_err"] = then_err
    return {"conditional": c}


_NOT_TLS = {"not_one_of": ["https", "tls"]}

_HASH_FALLBACKS = {
    "consumer": ["none", "ip", "header", "cookie", "path", "query_arg", "uri_capture"],
    "ip": ["none", "consumer", "header", "cookie", "path", "query_arg", "uri_capture"],
    "path": ["none", "consumer", "header", "cookie", "query_arg", "ip", "uri_capture"],
}

ENTITY_CHECKS: dict[str, list[dict[str, Any]]] = {
    "services": [
        _cond("protocol", {"one_of": ["tcp", "tls", "udp", "grpc", "grpcs"]}, "path",
              {"eq": None}),
        *(_cond("protocol", _NOT_TLS, f, {"eq": None})
          for f in ("client_certificate", "tls_verify", "tls_verify_depth", "ca_certificates")),
    ],
    "routes": [
        _cond("protocols", {"elements": {"type": "string", "not_one_of": [
            "grpcs", "https", "tls", "tls_passthrough"]}}, "snis", {"len_eq": 0},
            "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or "
            "'tls_passthrough'"),
    ],
    "upstreams": [
        _cond("hash_on", {"match": "^header$"}, "hash_on_header", {"required": True}),
        _cond("hash_fallback", {"match": "^header$"}, "hash_fallback_header",
              {"required": True}),
        _cond("hash_on", {"match": "^cookie$"}, "hash_on_cookie", {"required": True}),
        _cond("hash_fallback", {"match": "^cookie$"}, "hash_on_cookie", {"required": True}),
        _cond("hash_on", {"match": "^none$"}, "hash_fallback", {"one_of": ["none"]}),
        _cond("hash_on", {"match": "^cookie$"}, "hash_fallback", {"one_of": ["none"]}),
        *(_cond("hash_on", {"match": f"^{on}$"}, "hash_fallback", {"one_of": fb})
          for on, fb in _HASH_FALLBACKS.items()),
        {"distinct": ["hash_on_header", "hash_fallback_header"]},
        _cond("hash_on", {"match": "^query_arg$"}, "hash_on_query_arg", {"required": True}),
        _cond("hash_fallback", {"match": "^query_arg$"}, "hash_fallback_query_arg",
              {"required": True}),
        {"distinct": ["hash_on_query_arg", "hash_fallback_query_arg"]},
        _cond("hash_on", {"match": "^uri_capture$"}, "hash_on_uri_capture",
              {"required": True}),
        _cond("hash_fallback", {"match": "^uri_capture$"}, "hash_fallback_uri_capture",
              {"required": True}),
        {"distinct": ["hash_on_uri_capture", "hash_fallback_uri_capture"]},
    ],
    "consumers": [{"at_least_one_of": ["custom_id", "username"]}],
}


def entity_checks(etype: str) -> list[dict[str, Any]]:
    return ENTITY_CHECKS.get(etype, [])


def _matches(value: Any, cond: dict[str, Any]) -> bool:
    if "match" in cond:
        return isinstance(value, str) and re.search(cond["match"], value) is not None
    if "one_of" in cond:
        return value in cond["one_of"]
    if "eq" in cond:
        return value == cond["eq"]
    if cond.get("required"):
        return value is not None
    return True


def _then_error(cond: dict[str, Any]) -> str:
    if "one_of" in cond:
        return "expected one of: " + ", ".join(str(v) for v in cond["one_of"])
    if cond.get("required"):
        return "required field missing"
    if "eq" in cond:
        return "value must be null" if cond["eq"] is None else f"value must be {cond['eq']}"
    return "invalid value"


def evaluate(etype: str, record: dict[str, Any],
             only: tuple[str, ...] = ("conditional", "distinct")) -> list[tuple[str, str]]:
    """(field or "@entity", message) for every failing check of `etype` on `record`."""
    out: list[tuple[str, str]] = []
    for check in ENTITY_CHECKS.get(etype, ()):
        kind, spec = next(iter(check.items()))
        if kind not in only:
            continue
        if kind == "conditional":
            if not _matches(record.get(spec["if_field"]), spec["if_match"]):
                continue
            if _matches(record.get(spec["then_field"]), spec["then_match"]):
                continue
            out.append(("@entity", spec.get("then_err") or
                        f"failed conditional validation given value of field "
                        f"'{spec['if_field']}'"))
            out.append((spec["then_field"], _then_error(spec["then_match"])))
        elif kind == "distinct":
            a, b = (record.get(f) for f in spec)
            if a is not None and a == b:
                out.append(("@entity", "values of these fields must be distinct: " +
                            ", ".join(f"'{f}'" for f in spec)))
    return out
