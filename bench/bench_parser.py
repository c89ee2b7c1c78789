"""Parser micro-benchmark: fastgw's C path and Python feed() API vs httptools (with the Python
callbacks a server needs), on the same three realistic requests, in one run.

    .venv/bin/python bench/bench_parser.py [--seconds 0.5] [--rounds 5]

Prints ns/request (median of alternating rounds) and the speed ratio against httptools.
"""
from __future__ import annotations

import argparse
import statistics
import time

import httptools

from fastgw._core.http_parser import RequestParser, _bench_parse

REQUESTS = {
    "wrk GET": (
        b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n"
        b"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9\r\n"
        b"Connection: keep-alive\r\n\r\n"
    ),
    "browser GET (12 headers)": (
        b"GET /api/v1/users/12345/profile?fields=name,email&expand=true HTTP/1.1\r\n"
        b"Host: api.example.com\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/124.0.0.0 Safari/537.36\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"
        b"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
        b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
        b"Referer: https://www.example.com/dashboard\r\n"
        b"Cookie: session=4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c; theme=dark; _ga=GA1.2.123456789.1700000000\r\n"
        b"Connection: keep-alive\r\n"
        b"Cache-Control: max-age=0\r\n"
        b"Sec-Fetch-Dest: document\r\n"
        b"Sec-Fetch-Mode: navigate\r\n"
        b"X-Request-Id: 7d1f2c3b-4a5e-6f70-8192-a3b4c5d6e7f8\r\n\r\n"
    ),
    "chunked POST": (
        b"POST /upload HTTP/1.1\r\nHost: api.example.com\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (
            b'{"name": "fastgw", "n": 1,', b' "tags": ["gateway", "proxy"], "x"', b": 42}"))
        + b"0\r\n\r\n"
    ),
}


class _Proto:
    """The callbacks an httptools-based server (uvicorn-style) installs."""

    __slots__ = ("url", "headers", "body", "done")

    def __init__(self):
        self.url = b""
        self.headers = []
        self.body = []
        self.done = 0

    def on_url(self, url):
        self.url += url

    def on_header(self, name, value):
        self.headers.append((name, value))

    def on_headers_complete(self):
        pass

    def on_body(self, body):
        self.body.append(body)

    def on_message_complete(self):
        self.done += 1


def httptools_run(data: bytes, n: int) -> int:
    proto = _Proto()
    parser = httptools.HttpRequestParser(proto)
    for _ in range(n):
        proto.url = b""
        proto.headers = []
        proto.body = []
        parser.feed_data(data)
    assert proto.done == n
    return n


def fastgw_c_run(data: bytes, n: int) -> int:
    got = _bench_parse(data, n)
    assert got == n
    return n


def fastgw_py_run(data: bytes, n: int) -> int:
    parser = RequestParser()
    count = 0
    for _ in range(n):
        count += len(parser.feed(data))
    assert count >= 2 * n
    return n


RUNNERS = {"fastgw C API": fastgw_c_run, "fastgw feed()": fastgw_py_run, "httptools": httptools_run}


def ns_per_request(fn, data: bytes, seconds: float) -> float:
    n = 1000
    while True:    # calibrate to ~seconds
        t0 = time.perf_counter_ns()
        fn(data, n)
        dt = time.perf_counter_ns() - t0
        if dt > seconds * 1e9 / 4 or n > 50_000_000:
            break
        n *= 4
    n = max(1, int(n * seconds * 1e9 / max(dt, 1)))
    t0 = time.perf_counter_ns()
    fn(data, n)
    return (time.perf_counter_ns() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.4, help="time per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (median taken)")
    args = ap.parse_args()
    print(f"{'request':26} {'bytes':>5} " + " ".join(f"{k:>15}" for k in RUNNERS)
          + f" {'C vs httptools':>15} {'feed vs httptools':>18}")
    for name, data in REQUESTS.items():
        results: dict[str, list[float]] = {k: [] for k in RUNNERS}
        for _ in range(args.rounds):
            for k, fn in RUNNERS.items():
                results[k].append(ns_per_request(fn, data, args.seconds))
        med = {k: statistics.median(v) for k, v in results.items()}
        print(f"{name:26} {len(data):5d} " + " ".join(f"{med[k]:12.0f} ns" for k in RUNNERS)
              + f" {med['httptools'] / med['fastgw C API']:14.1f}x"
              + f" {med['httptools'] / med['fastgw feed()']:17.1f}x")


if __name__ == "__main__":
    main()
