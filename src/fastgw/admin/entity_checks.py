"""Kong's `entity_checks` of each entity schema, as `GET /schemas/{entity}` shows them
(kong/db/schema/entities/*.lua through api_helpers.schema_to_jsonable: functions dropped).
They describe the cross-field rules fastgw's model enforces (config/model.py) so tools that
read the schema (Kong Manager, decK's validation) see the same rules as Kong's."""
from __future__ import annotations

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
