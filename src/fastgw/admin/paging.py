"""Kong's pagination of list endpoints: `size` (default 100, max 1000) and an opaque
`offset` token; `next` is the path of the following page (kong/api/endpoints.lua)."""
from __future__ import annotations

import base64
import binascii
from typing import Any, Protocol
from urllib.parse import quote

from fastgw.admin.errors import HTTPError

# pagination (Kong: size default 100, max 1000)
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000


class _Query(Protocol):
    path: str

    def q(self, name: str) -> str | None: ...


def _encode_offset(i: int) -> str:
    return base64.urlsafe_b64encode(f"o:{i}".encode()).decode().rstrip("=")


def _decode_offset(tok: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)).decode()
        if not raw.startswith("o:"):
            raise ValueError
        i = int(raw[2:])
        if i < 0:
            raise ValueError
        return i
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise HTTPError(400, {"code": 7, "name": "invalid offset",
                              "message": f"'{tok}' is not a valid offset: "
                                         "bad base64 encoding"}) from None


def paginate(rows: list[Any], r: _Query) -> dict[str, Any]:
    size_s = r.q("size")
    size = PAGE_SIZE_DEFAULT
    if size_s is not None:
        try:
            size = int(size_s)
        except ValueError:
            size = -1
        if not 1 <= size <= PAGE_SIZE_MAX:
            raise HTTPError(400, {"code": 9, "name": "invalid size",
                                  "message": f"size must be an integer between 1 and "
                                             f"{PAGE_SIZE_MAX}"})
    start = 0
    tok = r.q("offset")
    if tok:
        start = _decode_offset(tok)
    page = rows[start:start + size]
    body: dict[str, Any] = {"data": page, "next": None}
    if start + size < len(rows):
        off = _encode_offset(start + size)
        # Kong's order: offset first, then size (10-services_routes_spec.lua "propagate in
        # next a page size")
        params = [f"offset={off}"]
        if size_s is not None:
            params.append(f"size={size}")
        if r.q("tags"):
            params.append("tags=" + quote(r.q("tags") or "", safe=",/"))
        body["next"] = r.path.split("?", 1)[0] + "?" + "&".join(params)
        body["offset"] = off
    return body
