"""Generators (framework-free core)."""
