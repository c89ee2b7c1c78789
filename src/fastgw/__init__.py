"""fastgw: a Kong-compatible API gateway with a compiled hot path."""
__version__ = "0.1.0"
