"""Kong's node configuration surface: a kong.conf file, KONG_* / FASTGW_* environment
variables and CLI flags resolved into one `Settings` (see `settings.py`)."""
from fastgw.conf.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
