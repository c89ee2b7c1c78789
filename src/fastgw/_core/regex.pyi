"""Route regexes on PCRE2 (JIT) with match limits (see regex.pyx)."""

MATCH_LIMIT: int


class RegexError(ValueError):
    message: str
    offset: int


class Regex:
    pattern: str
    caseless: bool
    jit: bool
    groups: int
    groupindex: dict[str, int]
    names: tuple[str | None, ...]

    def __init__(self, pattern: str, caseless: bool = False) -> None: ...
    def search(
        self, data: bytes | str, anchored: bool = False
    ) -> tuple[tuple[int, int], ...] | None: ...
    def status(self, data: bytes, anchored: bool = False) -> int: ...


def compile(pattern: str, caseless: bool = False) -> Regex: ...
