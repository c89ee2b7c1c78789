"""Admin API request bodies: JSON, form-urlencoded and multipart/form-data (Kong accepts all
three on every endpoint: kong/api/arguments.lua), decoded to one dict with Kong's form
conventions."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from fastgw import multipart
from fastgw.admin.errors import HTTPError


# Kong's kong/api/arguments.lua: at most 1000 query and 1000 body arguments per request
# (nginx's default lua_max_post_args is 100; Kong raises it for the Admin API)
MAX_URI_ARGS = 1000
MAX_POST_ARGS = 1000
TOO_MANY = {"message": "Too many arguments"}

# Kong's api_helpers.before_filter: the body types a PUT/POST/PATCH may carry, and the YAML
# types /config also takes
_BODY_TYPES = ("application/json", "multipart/form-data", "application/x-www-form-urlencoded")
_YAML_TYPES = ("application/yaml", "text/yaml")


def check_content_type(method: str, headers: dict[str, str], body: bytes,
                       is_config: bool) -> None:
    """415 for a body Kong would not read (a type it does not parse, or no type at all)."""
    if method not in ("PUT", "POST", "PATCH"):
        return
    ctype = headers.get("content-type")
    if ctype is None:
        if body:
            raise HTTPError(415, {"message": "Unsupported Media Type"})
        return
    ct = ctype.strip().lower()
    if ct.startswith(_BODY_TYPES) or (is_config and ct.startswith(_YAML_TYPES)):
        return
    raise HTTPError(415, {"message": "Unsupported Media Type"})


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def parse_body(content_type_header: str, body: bytes) -> dict[str, Any]:
    """The body as a dict; HTTPError 400 when it does not parse, 415 for another type."""
    content_type = media_type(content_type_header)
    if not body or not body.strip():
        if content_type == "application/json":  # Kong: an empty JSON body does not parse
            raise HTTPError(400, {"message": "Cannot parse JSON body"})
        return {}
    if content_type == "multipart/form-data":
        try:
            pairs = multipart.to_pairs(content_type_header, body)
        except multipart.MultipartError as e:
            raise HTTPError(400, {"message": f"Cannot parse multipart body: {e}"}) from None
        if len(pairs) > MAX_POST_ARGS:
            raise HTTPError(400, TOO_MANY)
        return form_to_dict(pairs)
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=MAX_POST_ARGS)
        except UnicodeDecodeError:
            raise HTTPError(400, {"message": "Cannot parse form body"}) from None
        except ValueError:  # parse_qsl's max_num_fields
            raise HTTPError(400, TOO_MANY) from None
        return form_to_dict(pairs)
    if content_type in ("", "application/json") or content_type.endswith("+json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise HTTPError(400, {"message": "Cannot parse JSON body"}) from None
        if not isinstance(data, dict):
            raise HTTPError(400, {"message": "Cannot parse JSON body"})
        return data
    raise HTTPError(415, {"message": f"Unsupported Content-Type: {content_type}"})


def form_to_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Kong's form conventions: `config.minute=5` -> {"config": {"minute": "5"}},
    `paths[]=/a&paths[]=/b` or `paths[1]=/a` -> ["/a", "/b"], a repeated plain key -> array,
    an empty value -> null."""
    root: dict[str, Any] = {}
    indexed: dict[int, dict[int, Any]] = {}  # id(list owner dict+key) -> index map
    for raw_key, raw_val in pairs:
        val: Any = raw_val if raw_val != "" else None
        node = root
        parts = raw_key.split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        last = parts[-1]
        if last.endswith("]") and "[" in last:
            name, _, idx = last[:-1].partition("[")
            lst = node.get(name)
            if not isinstance(lst, list):
                lst = []
                node[name] = lst
            if idx == "":
                if val is not None:
                    lst.append(val)
            elif idx.isdigit():
                slot = indexed.setdefault(id(lst), {})
                slot[int(idx)] = val
                lst[:] = [slot[i] for i in sorted(slot)]
            else:  # `headers[x-foo]=bar` is a map entry
                del node[name]
                m = node.setdefault(name, {})
                if isinstance(m, dict):
                    m[idx] = val
        elif last in node and val is not None:
            cur = node[last]
            node[last] = [*cur, val] if isinstance(cur, list) else [cur, val]
        else:
            node[last] = val
    return root


