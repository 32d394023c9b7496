"""Readers (framework-free core)."""
