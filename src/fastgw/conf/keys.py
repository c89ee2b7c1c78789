"""Which kong.conf keys fastgw reads, and what it does with the rest.

Four kinds of key (Kong's names: kong/templates/kong_defaults.lua):
- APPLIED: read and acted on (parsed by the `kind` given here).
- PENDING: belongs to a feature that is not in this build (PostgreSQL mode, TLS listeners): the
  value is parsed and kept in Settings for the code that will read it; setting it to anything
  but its default is a startup error "not supported yet", never silently ignored.
- INERT: a Kong key with no meaning for fastgw (nginx/Lua/DNS internals): a warning names it.
- anything else: an unknown key, warned about by name (Kong ignores them too).
"""
from __future__ import annotations

#: key -> (kind, fastgw default). kinds: str, list (comma-separated), bool (on/off),
#: int, workers (int or "auto"), listen (comma-separated list or "off")
APPLIED: dict[str, tuple[str, object]] = {
    "prefix": ("str", None),
    "log_level": ("str", "info"),
    "proxy_listen": ("listen", ["127.0.0.1:8000", "127.0.0.1:8443 ssl http2"]),
    # the default certificate of TLS listeners (without: a self-signed one made at start)
    "ssl_cert": ("list", []),
    "ssl_cert_key": ("list", []),
    "admin_listen": ("listen", ["127.0.0.1:8001"]),
    "status_listen": ("listen", []),
    # Kong Manager's listener: fastgw's dashboard (default off; Kong: 0.0.0.0:8002)
    "admin_gui_listen": ("listen", []),
    "declarative_config": ("str", None),
    "declarative_config_string": ("str", None),
    "database": ("str", "off"),
    "trusted_ips": ("list", []),
    "real_ip_header": ("str", "X-Real-IP"),
    "real_ip_recursive": ("bool", False),
    "nginx_worker_processes": ("workers", 1),
    "nginx_main_worker_processes": ("workers", None),
    "headers": ("list", ["server_tokens", "latency_tokens", "x-kong-request-id"]),
    "headers_upstream": ("list", ["x-kong-request-id"]),
    "proxy_access_log": ("str", None),      # None: the verb's default (see cli)
    "proxy_error_log": ("str", None),
    "node_id": ("str", None),
    # fastgw's own keys (FASTGW_* / KONG_* alike)
    "admin_token": ("str", None),
    "admin_persist": ("str", None),
    "proxy_access_log_format": ("str", "combined"),
    "trace_key": ("str", None),
    # database = postgres (fastgw.cluster.pg); `database` also takes a postgres:// URL
    "pg_host": ("str", "127.0.0.1"), "pg_port": ("int", 5432), "pg_database": ("str", "kong"),
    "pg_timeout": ("int", 5000), "pg_user": ("str", "kong"), "pg_password": ("str", None),
    "database_cache": ("str", None),   # fastgw's: the last configuration seen, for restarts
}

#: parsed and kept for features this build does not have yet (see module doc)
PENDING: dict[str, tuple[str, object]] = {
    "pg_schema": ("str", None), "pg_ssl": ("bool", False), "pg_ssl_verify": ("bool", False),
    "pg_max_concurrent_queries": ("int", 0), "pg_semaphore_timeout": ("int", 60000),
    "pg_pool_size": ("int", None), "pg_backlog": ("int", None),
    "pg_keepalive_timeout": ("int", None),
    "pg_ro_host": ("str", None), "pg_ro_port": ("int", None), "pg_ro_database": ("str", None),
    "pg_ro_user": ("str", None), "pg_ro_password": ("str", None),
    "admin_ssl_cert": ("list", []), "admin_ssl_cert_key": ("list", []),
    "status_ssl_cert": ("list", []), "status_ssl_cert_key": ("list", []),
    "client_ssl": ("bool", False), "client_ssl_cert": ("str", None),
    "client_ssl_cert_key": ("str", None),
    "ssl_protocols": ("str", "TLSv1.2 TLSv1.3"), "ssl_cipher_suite": ("str", "intermediate"),
    "ssl_ciphers": ("str", None),
    "upstream_keepalive_pool_size": ("int", 512),
    "upstream_keepalive_max_requests": ("int", 10000),
    "upstream_keepalive_idle_timeout": ("int", 60),
}

#: which feature a PENDING key waits for (the "not supported yet" message names it)
PENDING_FEATURE = {"pg_": "database = postgres", "ssl_": "TLS listeners",
                   "admin_ssl": "TLS listeners", "status_ssl": "TLS listeners",
                   "client_ssl": "TLS to upstreams from kong.conf",
                   "upstream_keepalive": "configurable upstream keep-alive pools"}

#: Kong keys with no meaning in fastgw: accepted with a warning naming them
INERT = frozenset("""
proxy_stream_access_log proxy_stream_error_log admin_access_log admin_error_log
admin_gui_access_log admin_gui_error_log status_access_log status_error_log vaults plugins
port_maps host_ports anonymous_reports proxy_server proxy_server_ssl_verify error_template_html
error_template_json error_template_xml error_template_plain stream_listen
cluster_listen cluster_control_plane cluster_cert cluster_cert_key cluster_mtls cluster_ca_cert
cluster_server_name cluster_data_plane_purge_delay cluster_ocsp cluster_max_payload
cluster_use_proxy cluster_dp_labels cluster_rpc cluster_rpc_sync cluster_cjson
lmdb_environment_path lmdb_map_size mem_cache_size worker_events_max_payload
ssl_prefer_server_ciphers ssl_dhparam ssl_session_tickets ssl_session_timeout
ssl_session_cache_size admin_gui_ssl_cert admin_gui_ssl_cert_key error_default_type
allow_debug_header nginx_user nginx_daemon nginx_main_daemon nginx_main_user
nginx_main_worker_rlimit_nofile nginx_events_worker_connections nginx_events_multi_accept
nginx_http_charset nginx_http_client_max_body_size nginx_http_client_body_buffer_size
nginx_http_ssl_protocols nginx_http_ssl_prefer_server_ciphers nginx_http_ssl_dhparam
nginx_http_ssl_session_tickets nginx_http_ssl_session_timeout nginx_http_ssl_conf_command
nginx_http_proxy_ssl_conf_command nginx_http_lua_ssl_conf_command
nginx_http_grpc_ssl_conf_command nginx_http_lua_regex_match_limit
nginx_http_lua_regex_cache_max_entries nginx_http_keepalive_requests
nginx_stream_ssl_conf_command nginx_stream_proxy_ssl_conf_command
nginx_stream_lua_ssl_conf_command nginx_stream_ssl_protocols
nginx_stream_ssl_prefer_server_ciphers nginx_stream_ssl_dhparam
nginx_stream_ssl_session_tickets nginx_stream_ssl_session_timeout nginx_proxy_real_ip_header
nginx_proxy_real_ip_recursive nginx_admin_client_max_body_size
nginx_admin_client_body_buffer_size client_body_buffer_size pg_ro_schema pg_ro_timeout
pg_ro_ssl pg_ro_ssl_verify pg_ro_max_concurrent_queries pg_ro_semaphore_timeout
pg_ro_keepalive_timeout pg_ro_pool_size pg_ro_backlog db_update_frequency
db_update_propagation db_cache_ttl db_cache_neg_ttl db_resurrect_ttl db_cache_warmup_entities
dns_resolver dns_hostsfile dns_order dns_valid_ttl dns_stale_ttl dns_cache_size
dns_not_found_ttl dns_error_ttl dns_no_sync new_dns_client resolver_address
resolver_hosts_file resolver_family resolver_valid_ttl resolver_stale_ttl
resolver_lru_cache_size resolver_mem_cache_size resolver_error_ttl
dedicated_config_processing worker_consistency worker_state_update_frequency router_flavor
lua_socket_pool_size lua_ssl_trusted_certificate lua_ssl_verify_depth lua_ssl_protocols
lua_package_path lua_package_cpath lua_max_req_headers lua_max_resp_headers lua_max_uri_args
lua_max_post_args role kic pluginserver_names untrusted_lua untrusted_lua_sandbox_requires
untrusted_lua_sandbox_environment admin_gui_url admin_gui_path admin_gui_api_url
admin_gui_csp_header openresty_path opentelemetry_tracing opentelemetry_tracing_sampling_rate
tracing_instrumentations tracing_sampling_rate wasm wasm_filters_path wasm_dynamic_module
wasm_filters request_debug request_debug_token
""".split())

#: Kong's log levels (nginx error_log) -> Python logging level names
LOG_LEVELS = {"debug": "DEBUG", "info": "INFO", "notice": "INFO", "warn": "WARNING",
              "warning": "WARNING", "error": "ERROR", "crit": "CRITICAL",
              "critical": "CRITICAL", "alert": "CRITICAL", "emerg": "CRITICAL"}

#: Kong's `headers` values (kong/conf_loader/constants.lua HEADERS) fastgw emits
HEADER_TOKENS = frozenset({"server_tokens", "latency_tokens", "x-kong-request-id", "server",
                           "via", "x-kong-proxy-latency", "x-kong-upstream-latency",
                           "x-kong-response-latency", "x-kong-upstream-status",
                           "x-kong-admin-latency", "off"})
