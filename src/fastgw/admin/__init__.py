"""Kong-compatible Admin API: `AdminAPI` (framework-agnostic) and its asyncio HTTP listener."""
from fastgw.admin.app import AdminAPI
from fastgw.admin.server import AdminServer, start_admin_server

__all__ = ["AdminAPI", "AdminServer", "start_admin_server"]
