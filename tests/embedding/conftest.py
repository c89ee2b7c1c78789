"""Fixtures of fastgw.testing (the same ones users enable with
pytest_plugins = ["fastgw.testing.pytest_plugin"]); imported here because only the top-level
conftest may declare pytest_plugins."""
from fastgw.testing.pytest_plugin import fastgw_run, gateway_client, loop_kind  # noqa: F401
