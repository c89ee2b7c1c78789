"""Operators' debugging aids: route explanations, shadowed routes, request traces."""
