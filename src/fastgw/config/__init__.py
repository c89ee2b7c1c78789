"""Configuration: Kong entities (model), kong.yml (declarative), the live store and diffs."""
from fastgw.config.errors import ConfigError, EntityNotFound, ForeignKeyViolation, UniqueViolation
from fastgw.config.model import (Acl, BasicAuthCredential, Config, Consumer, JwtSecret,
                                 KeyAuthCredential, Plugin, Route, Service, Target, Upstream,
                                 config_hash)

__all__ = ["Acl", "BasicAuthCredential", "Config", "ConfigError", "Consumer", "EntityNotFound",
           "ForeignKeyViolation", "JwtSecret", "KeyAuthCredential", "Plugin", "Route",
           "Service", "Target", "UniqueViolation", "Upstream", "config_hash"]
