"""tests/native: the compiled plugin chain against the Python one. The fastgw.testing fixtures
(fastgw_run runs each test on asyncio and on uvloop) as in tests/embedding."""
from fastgw.testing.pytest_plugin import fastgw_run, gateway_client, loop_kind  # noqa: F401
