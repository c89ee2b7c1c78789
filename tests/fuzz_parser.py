"""Fuzz entry point for fastgw's HTTP/1.1 parser.

Property: any input either parses or raises HttpParseError (status 400-599) - never another
exception, a hang or a crash - and the outcome does not depend on how the input is split.

    # with atheris (coverage-guided), if installed:
    .venv/bin/python tests/fuzz_parser.py -atheris [libFuzzer args...]
    # standalone: replay a corpus directory, then mutate it randomly for N seconds
    .venv/bin/python tests/fuzz_parser.py [--corpus DIR] [--seconds 30] [--seed 1]

Without --corpus the seed corpus is every vector in tests/parser/vectors/ and the llhttp
fixtures in /work/shared/vectors/llhttp.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from fastgw._core.http_parser import Data, HttpParseError, RequestParser, ResponseParser


def merge_data(events: list) -> list:
    """Adjacent Data events joined: how a body is cut into events depends on the reads."""
    out: list = []
    for e in events:
        if isinstance(e, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + e.data)
        else:
            out.append(e)
    return out


def _drive(parser, chunks: list[bytes]) -> tuple[list, int | None]:
    events: list = []
    try:
        for c in chunks:
            events += parser.feed(c)
        events += parser.feed_eof()
    except HttpParseError as e:
        if not (400 <= e.status <= 599 and isinstance(e.reason, str)):
            raise AssertionError(f"bad HttpParseError {e!r}") from e
        return merge_data(events), e.status
    return merge_data(events), None


def TestOneInput(data: bytes) -> None:
    """atheris/libFuzzer-style entry: the first byte picks the parser kind, options and a split."""
    if not data:
        return
    ctl, body = data[0], data[1:]
    for make in (lambda: RequestParser(require_host=bool(ctl & 1), raw_chunks=bool(ctl & 2)),
                 lambda: ResponseParser(raw_chunks=bool(ctl & 2))):
        whole = _drive(make(), [body])
        step = (ctl >> 2) + 1
        split = _drive(make(), [body[i:i + step] for i in range(0, len(body), step)])
        if whole[1] != split[1] or (whole[1] is None and whole[0] != split[0]):
            raise AssertionError(f"split-dependent outcome: {whole} vs {split}")


def _seed_corpus() -> list[bytes]:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "parser"))
    from llhttp_cases import LLHTTP_DIR, load_cases
    from parser_vectors import load_vectors

    seeds = [v.raw for v in load_vectors()]
    if LLHTTP_DIR.is_dir():
        seeds += [c.raw for c in load_cases()]
    return seeds


_TOKENS = [b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b";", b"=", b"\"", b"0", b"f", b"\x00", b"\xff",
           b"Transfer-Encoding: chunked\r\n", b"Content-Length: 1\r\n", b"Connection: close\r\n",
           b"HTTP/1.1", b"0\r\n\r\n"]


def _mutate(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(4)
        i = rnd.randint(0, len(b))
        if op == 0 and b:
            del b[i % len(b)]
        elif op == 1 and b:
            b[i % len(b)] = rnd.randrange(256)
        elif op == 2:
            b[i:i] = rnd.choice(_TOKENS)
        elif b:
            j = rnd.randint(0, len(b))
            b[i:i] = b[min(i, j):max(i, j)][:64]
    return bytes(b)


def run_standalone(corpus: list[bytes], seconds: float, seed: int) -> int:
    rnd = random.Random(seed)
    n = 0
    for d in corpus:
        for ctl in (0, 1, 3, 0x55, 0xFE):
            TestOneInput(bytes([ctl]) + d)
            n += 1
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        TestOneInput(bytes([rnd.randrange(256)]) + _mutate(rnd, rnd.choice(corpus)))
        n += 1
    return n


def main(argv: list[str]) -> None:
    if argv and argv[0] == "-atheris":
        import atheris  # optional: pip install atheris

        atheris.instrument_all()
        atheris.Setup([sys.argv[0], *argv[1:]], TestOneInput)
        atheris.Fuzz()
        return
    ap = argparse.ArgumentParser(description="fuzz fastgw's HTTP parser")
    ap.add_argument("--corpus", type=Path, help="directory of input files (default: test vectors)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    corpus = ([p.read_bytes() for p in sorted(args.corpus.iterdir()) if p.is_file()]
              if args.corpus else _seed_corpus())
    n = run_standalone(corpus, args.seconds, args.seed)
    print(f"{n} inputs, no property violation")


if __name__ == "__main__":
    main(sys.argv[1:])
