"""The kong.conf file format (kong/conf_loader/parse.lua + pl.config as Kong reads it).

Rules:
- One `key = value` per line; `#` starts a comment unless escaped as `\\#`; blank lines skip.
- Keys are case-insensitive (Kong lowercases them); values are trimmed.
- A line that is not `key = value` is an error naming the file and line, never skipped.
- Bytes that are not UTF-8 are an error naming the file, never a traceback.
"""
from __future__ import annotations

import re

#: a key as Kong's templates spell them: letters, digits, underscores
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: the largest kong.conf accepted (Kong's own template is ~80 KiB with every comment);
#: a bigger file is a mistake (a binary, a log) and is refused before parsing
MAX_CONF_BYTES = 1 << 20


class ConfFileError(Exception):
    """A kong.conf that cannot be parsed: the message names the file (and line)."""


def parse_conf_text(text: str, source: str = "<string>") -> dict[str, str]:
    """kong.conf text -> {key: raw value}; a later line for the same key wins (as in Kong)."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if not sep or not _KEY.match(key):
            raise ConfFileError(f"{source}:{lineno}: expected 'key = value', got {raw.strip()!r}")
        out[key] = value.strip()
    return out


def _strip_comment(line: str) -> str:
    # `\#` is a literal hash (Kong: "escape # with \\#"); an unescaped # ends the line
    i = 0
    while True:
        i = line.find("#", i)
        if i < 0:
            return line.replace("\\#", "#")
        if i > 0 and line[i - 1] == "\\":
            i += 1
            continue
        return line[:i].replace("\\#", "#")


def read_conf_file(path: str) -> dict[str, str]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONF_BYTES + 1)
    except OSError as e:
        raise ConfFileError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_CONF_BYTES:
        raise ConfFileError(f"{path}: larger than {MAX_CONF_BYTES} bytes, not a kong.conf")
    if b"\x00" in data:
        raise ConfFileError(f"{path}: binary data (NUL bytes), not a kong.conf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfFileError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    return parse_conf_text(text, path)
