"""Retrievers (framework-free core)."""
