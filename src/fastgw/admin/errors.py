"""Errors the Admin API answers with a status and a Kong-shaped JSON body."""
from __future__ import annotations

from typing import Any


class HTTPError(Exception):
    def __init__(self, status: int, body: Any = None) -> None:
        self.status = status
        self.body = body


def not_found() -> HTTPError:
    return HTTPError(404, {"message": "Not found"})
