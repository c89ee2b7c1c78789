"""pre-function: Python functions named by import path, run first in every phase (Kong's
PRIORITY 1000000). See _serverless.py."""

from __future__ import annotations

from ._serverless import ServerlessFunction


class PreFunction(ServerlessFunction):
    name = "pre-function"
    PRIORITY = 1_000_000
