"""multipart/form-data (fastgw/multipart.py): the bodies `curl -F` sends parse; a malformed
body is a MultipartError, never a partial result."""
from __future__ import annotations

import pytest

from fastgw import multipart

CT = "multipart/form-data; boundary=XyZ"


def test_curl_file_upload_parses() -> None:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"config\"; filename=\"kong.yml\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n_format_version: \"3.0\"\n\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--XyZ--\r\n")
    parts = multipart.parse(CT, body)
    assert [(p.name, p.filename, p.text) for p in parts] == [
        ("config", "kong.yml", '_format_version: "3.0"\n'), ("x", None, "1")]


def test_quoted_boundary_and_roundtrip() -> None:
    ctype, body = multipart.encode([("a", "1"), ("b", "x\r\ny"), ("a", "2")], "b-1")
    assert ctype == "multipart/form-data; boundary=b-1"
    assert multipart.to_pairs('multipart/form-data; boundary="b-1"', body) == [
        ("a", "1"), ("b", "x\r\ny"), ("a", "2")]


@pytest.mark.parametrize("ctype, body", [
    ("multipart/form-data", b"--x\r\n\r\n--x--"),                       # no boundary
    (CT, b"no boundary here"),
    (CT, b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated"),
    (CT, b"--XyZ\r\nbad header line\r\n\r\nv\r\n--XyZ--"),
    ("multipart/form-data; boundary=" + "b" * 71, b"--" + b"b" * 71),  # RFC 2046: 70 max
])
def test_malformed_bodies_raise(ctype: str, body: bytes) -> None:
    with pytest.raises(multipart.MultipartError):
        multipart.parse(ctype, body)


def test_part_count_is_bounded() -> None:
    fields = [(f"f{i}", "v") for i in range(multipart.MAX_PARTS + 1)]
    ctype, body = multipart.encode(fields)
    with pytest.raises(multipart.MultipartError):
        multipart.parse(ctype, body)
