"""Functions the pre-function/post-function tests name by import path."""
from __future__ import annotations

import asyncio

from fastgw.plugins import Response

LOGGED: list[tuple[str, int, str | None]] = []
NOT_CALLABLE = 42


def add_apikey(ctx):
    # runs before key-auth (pre-function's priority): authenticates the request
    ctx.request.set_header("apikey", "k-alice")


def tag_upstream(ctx):
    ctx.request.set_header("X-Pre", "rewrite")


def deny_teapots(ctx):
    if ctx.request.get_header("x-teapot"):
        return Response.message(418, "I'm a teapot", {"X-From": "pre-function"})
    return None


async def slow_ok(ctx):
    await asyncio.sleep(0)
    ctx.request.set_header("X-Async", "yes")


def consumer_header(ctx):
    # post-function runs after key-auth: the consumer is known
    name = ctx.consumer.username if ctx.consumer is not None else "none"
    ctx.request.set_header("X-Seen-Consumer", name)


def response_header(ctx):
    ctx.response.set_header("X-Post", str(ctx.response.status))


def upper_body(ctx, chunk, eof):
    return chunk.upper()


def record(ctx):
    LOGGED.append((ctx.request.path, ctx.response.status, ctx.consumer.username if ctx.consumer else None))


async def async_header_filter(ctx):  # rejected: header_filter cannot be async
    return None


def set_groups(ctx):
    # what an authentication plugin with groups (ldap-auth, ...) leaves for acl and session
    ctx.vars["authenticated_groups"] = ["agents", "doubleagents"]
