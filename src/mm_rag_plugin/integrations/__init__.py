"""Adapters for LangChain and LlamaIndex: thin conversions over the core."""

from .._progress import quiet_notebook_tqdm

quiet_notebook_tqdm()  # the frameworks import tqdm.auto; in a notebook without ipywidgets it warns
del quiet_notebook_tqdm
