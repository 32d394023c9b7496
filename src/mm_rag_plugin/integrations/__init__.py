"""Adapters for LangChain and LlamaIndex: thin conversions over the core."""
