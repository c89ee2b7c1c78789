"""Strings the gateway shows people, each defined once: the version, the Server token, and
Kong's messages for responses the gateway makes itself (Kong 3.x wording, kong/tools/http.lua
and kong/runloop/handler.lua). The compiled core, the plugins and the Admin API import these;
nothing here imports anything.
"""

VERSION = "0.1.0"
SERVER = f"fastgw/{VERSION}"

NO_ROUTE = "no Route matched with those values"
NO_SERVICE = "no Service found with those values"   # a route without a service (kong/init.lua)
BAD_GATEWAY = "An invalid response was received from the upstream server"
UPSTREAM_TIMEOUT = "The upstream server is timing out"
NO_PEER = "failure to get a peer from the ring-balancer"
INTERNAL = "An unexpected error occurred"
BAD_REQUEST = "Bad request"
REQUEST_TIMEOUT = "Request timeout"
BODY_TOO_LARGE = "Request size limit exceeded"
METHOD_NOT_ALLOWED = "Method not allowed"
EXPECTATION_FAILED = "Expectation Failed"
USE_HTTPS = "Please use HTTPS protocol"
BAD_BODY_FRAMING = "Bad request: invalid request body framing"
PROTECTED_FIELD = "Bad request: Connection names a protected field"
TOO_MANY_CONNECTIONS = "Too many connections"

__all__ = [n for n in dir() if n.isupper()]
