"""In-process plugins with Kong's phases, scoping and priorities.

Public API::

    from fastgw.plugins import Plugin, Response, register

    @register
    class Hello(Plugin):
        name = "hello"
        PRIORITY = 1000
        class Config(msgspec.Struct, forbid_unknown_fields=True):
            greeting: str = "hi"
        def access(self, ctx):
            ctx.request.set_header("x-greeting", self.config.greeting)

See base.py (plugin rules), context.py (the per-request API and what the proxy reads back),
chain.py (precedence and the phase runners) and registry.py (lookup and config validation).
"""

from .base import Plugin, PluginEnv, Response, field_error
from .chain import Chain, ChainIndex, PluginInstanceError, apply_header_ops, build_chains
from .context import Context, HeaderSource, ListHeaders
from .registry import PluginConfigError, get, names, register, validate_config

__all__ = [
    "Plugin",
    "PluginEnv",
    "Response",
    "field_error",
    "Chain",
    "ChainIndex",
    "PluginInstanceError",
    "apply_header_ops",
    "build_chains",
    "Context",
    "HeaderSource",
    "ListHeaders",
    "PluginConfigError",
    "get",
    "names",
    "register",
    "validate_config",
]
