"""PDF table detection (``page_words`` + ``find_tables``) against an earlier version of
``readers/_tables.py``, interleaved page by page on the same pages (a busy machine: read the
ratio), asserting both find the same tables. Pages: the shared PDFs in ``pdfs/text_figures``.

    git show <rev>:src/mm_rag_plugin/readers/_tables.py > /tmp/tables_before.py
    MM_RAG_SHARED_DATA=... .venv/bin/python -m benchmarks.bench_table_detection /tmp/tables_before.py
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    import pypdfium2
    import pypdfium2.raw as raw

    import mm_rag_plugin.readers._tables as new
    from mm_rag_plugin.readers._pdf_layout import collect, figure_regions

    spec = importlib.util.spec_from_file_location("mm_rag_plugin.readers._tables_before", argv[0])
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old
    spec.loader.exec_module(old)
    shared = Path(os.environ.get("MM_RAG_SHARED_DATA", "/work/shared/data"))
    files = sorted((shared / "pdfs" / "text_figures").glob("*.pdf"))
    spent = {"before": 0.0, "after": 0.0}
    pages = 0
    for _round in range(3):
        for f in files:
            doc = pypdfium2.PdfDocument(str(f))
            for i in range(len(doc)):
                page = doc[i]
                tp = page.get_textpage()
                text = tp.get_text_range() if tp.count_chars() else ""
                layout = collect(page, raw, tp, max_paths=50_000)
                regions = figure_regions(layout) if layout.paths and not layout.truncated else []
                order = [("before", old), ("after", new)] if pages % 2 else [("after", new), ("before", old)]
                found = {}
                for name, mod in order:
                    t = time.perf_counter()
                    found[name] = [tb.rows for tb in mod.find_tables(mod.page_words(tp, raw, text), layout, regions)]
                    spent[name] += time.perf_counter() - t
                assert found["before"] == found["after"], f"{f.name} page {i + 1}: the tables differ"
                pages += 1
                tp.close()
                page.close()
            doc.close()
    print(
        f"{pages} pages (3 rounds): before {spent['before']:.2f} s, after {spent['after']:.2f} s, "
        f"after/before {spent['after'] / spent['before']:.2f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
