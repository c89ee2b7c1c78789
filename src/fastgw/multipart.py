"""multipart/form-data bodies (RFC 7578), read and written.

Kong accepts them in the Admin API (`curl -F config=@kong.yml`) and in the plugins that read
form bodies (key-auth `key_in_body`, request-transformer). Rules:
- The boundary comes from the Content-Type parameter (RFC 2046 section 5.1.1: 1-70
  characters); a body that does not follow it is a MultipartError, never a partial result.
- A part is named by `Content-Disposition: form-data; name="..."`; its value is the part's
  bytes decoded as UTF-8 (a file part too: a declarative file is text). Parts without a name
  are skipped (RFC 7578 section 4.2 says every part has one; Kong's lua-multipart skips them).
- At most MAX_PARTS parts: a form, not an archive.
"""

from __future__ import annotations

import re
import uuid

# RFC 2046 section 5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY = 70
# Parts per body; nginx has no such limit, PHP's max_input_vars defaults to 1000.
MAX_PARTS = 1000

_BOUNDARY_RE = re.compile(r'boundary=(?:"([^"]{1,70})"|([^;\s"]{1,70}))(?=;|\s|$)',
                          re.IGNORECASE)
_NAME_RE = re.compile(r'\bname="((?:[^"\\]|\\.)*)"|\bname=([^;\s]+)', re.IGNORECASE)
_FILENAME_RE = re.compile(r'\bfilename="((?:[^"\\]|\\.)*)"', re.IGNORECASE)


class MultipartError(ValueError):
    """A multipart body that cannot be parsed."""


class Part:
    __slots__ = ("name", "filename", "headers", "data")

    def __init__(self, name: str, filename: str | None, headers: list[tuple[str, str]],
                 data: bytes) -> None:
        self.name = name
        self.filename = filename
        self.headers = headers
        self.data = data

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


def is_multipart(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";", 1)[0].strip().lower() == \
        "multipart/form-data"  # type: ignore[union-attr]


def boundary_of(content_type: str) -> str:
    m = _BOUNDARY_RE.search(content_type)
    if m is None:
        raise MultipartError("multipart/form-data without a boundary")
    return m.group(1) or m.group(2)


def parse(content_type: str, body: bytes) -> list[Part]:
    """The parts of a multipart/form-data body, in order."""
    delim = b"--" + boundary_of(content_type).encode("latin-1")
    start = body.find(delim)
    if start < 0:
        raise MultipartError("multipart body without its boundary")
    parts: list[Part] = []
    pos = start + len(delim)
    while True:
        if body[pos:pos + 2] == b"--":
            return parts  # close delimiter; the epilogue is ignored (RFC 2046)
        # transport padding, then CRLF
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise MultipartError("malformed multipart delimiter line")
        pos = eol + 2
        nxt = body.find(b"\r\n" + delim, pos)
        if nxt < 0:
            raise MultipartError("multipart body is not terminated")
        chunk = body[pos:nxt]
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            if chunk.startswith(b"\r\n"):  # a part with no headers
                head, data = b"", chunk[2:]
            else:
                raise MultipartError("multipart part without a header block")
        headers = []
        for line in head.split(b"\r\n"):
            if not line:
                continue
            k, colon, v = line.partition(b":")
            if not colon:
                raise MultipartError("malformed multipart part header")
            headers.append((k.decode("latin-1").strip().lower(), v.decode("utf-8", "replace").strip()))
        disp = next((v for k, v in headers if k == "content-disposition"), "")
        nm = _NAME_RE.search(disp)
        if nm is not None:
            if len(parts) >= MAX_PARTS:
                raise MultipartError(f"more than {MAX_PARTS} multipart parts")
            name = nm.group(1) if nm.group(1) is not None else nm.group(2)
            fn = _FILENAME_RE.search(disp)
            parts.append(Part(name.replace('\\"', '"'), fn.group(1) if fn else None, headers,
                              data))
        pos = nxt + 2 + len(delim)


def to_pairs(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """(name, text value) pairs, as a form would give them."""
    try:
        return [(p.name, p.text) for p in parse(content_type, body)]
    except UnicodeDecodeError:
        raise MultipartError("multipart part is not valid UTF-8") from None


def encode(fields: list[tuple[str, str]], boundary: str | None = None) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data body with these text fields."""
    b = boundary or uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        safe = name.replace('"', '\\"')
        out += f'--{b}\r\nContent-Disposition: form-data; name="{safe}"\r\n\r\n'.encode()
        out += value.encode("utf-8") + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return f"multipart/form-data; boundary={b}", bytes(out)
