"""post-function: Python functions named by import path, run last in every phase (Kong's
PRIORITY -1000). See _serverless.py."""

from __future__ import annotations

from ._serverless import ServerlessFunction


class PostFunction(ServerlessFunction):
    name = "post-function"
    PRIORITY = -1000
