"""``python -m mm_rag_plugin``: the ``mm-rag`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
