"""Our English stop words and stemming against other BM25 implementations' defaults.

bm25s (``bm25s.tokenize``): Lucene's 33 English stop words, the ``\\w\\w+`` tokens of scikit-learn,
PyStemmer's Snowball stemmer. NLTK: the English stop-word list rank_bm25 and LlamaIndex pipelines use.
Each deliberate difference is named below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mm_rag_plugin.retrievers.bm25 import ENGLISH_STOP_WORDS, BM25Encoder

bm25s = pytest.importorskip("bm25s")
Stemmer = pytest.importorskip("Stemmer")

PROSE = (
    "The quick brown foxes were jumping over the lazy dogs while their owners watched them. "
    "Generalization of retrieval models requires careful evaluation: running, runners and runs are "
    "related, and so are happiness, generously, dying and skies. Invoices are paid monthly by the "
    "accounting department, which also reconciles statements against national bank records."
)

#: Entries of NLTK's English list that are pieces of clitics (its tokenizer splits "don't" into
#: "don" "'t"; \w+ tokenizers into "don" "t"). This analysis cuts clitics whole (``don't`` -> do),
#: so it never produces them; ``won`` (the past of win) and ``don`` (a name) stay searchable.
NLTK_CLITIC_FRAGMENTS = {
    "ain", "aren", "couldn", "d", "didn", "doesn", "don", "hadn", "hasn", "haven", "isn", "ll", "m", "ma",
    "mightn", "mustn", "needn", "o", "re", "s", "shan", "shouldn", "t", "ve", "wasn", "weren", "won",
    "wouldn", "y",
}
#: In our list and not NLTK's: Snowball's English list has them (like "should", which NLTK has).
OURS_ONLY = {"could", "would"}


def nltk_english_stop_words() -> set[str]:
    try:
        from nltk.corpus import stopwords

        return set(stopwords.words("english"))
    except LookupError:  # no NLTK data downloaded: LlamaIndex ships a copy of the list
        pass
    try:
        import llama_index.core
    except ImportError:
        pytest.skip("neither NLTK's stop words nor LlamaIndex's copy of them is installed")
    listed = Path(llama_index.core.__file__).parent / "_static" / "nltk_cache" / "corpora" / "stopwords" / "english"
    if not listed.is_file():
        pytest.skip("NLTK's English stop words are not installed")
    return set(listed.read_text().split())


def bm25s_terms(text: str, stopwords: object = "en") -> list[str]:
    out = bm25s.tokenize(text, stopwords=stopwords, stemmer=Stemmer.Stemmer("english"), return_ids=False,
                         show_progress=False)
    return list(out[0])


def test_stop_words_hold_lucenes_default_list():
    from bm25s.stopwords import STOPWORDS_EN  # Lucene's EnglishAnalyzer default set

    assert len(STOPWORDS_EN) == 33 and set(STOPWORDS_EN) <= ENGLISH_STOP_WORDS


def test_stop_words_are_nltks_without_clitic_fragments():
    nltk_words = nltk_english_stop_words()
    with_apostrophe = {w for w in nltk_words if "'" in w}
    assert nltk_words - with_apostrophe - NLTK_CLITIC_FRAGMENTS == ENGLISH_STOP_WORDS - OURS_ONLY
    assert not OURS_ONLY & nltk_words
    # every clitic form NLTK lists is cut to its base: a stop word, or a modal NLTK does not list either
    enc = BM25Encoder()
    for form in sorted(with_apostrophe):
        for typographic in (form, form.replace("'", "’")):
            left = enc.tokenize(typographic)
            assert left == {"mightn't": ["might"], "mustn't": ["must"], "needn't": ["need"], "shan't": ["shall"]}.get(
                form, []
            ), form
            assert not set(left) & nltk_words, form


def test_plain_prose_gives_the_same_terms_as_bm25s_with_our_stop_words():
    """Same tokens, same stop words, same Snowball stemmer: the same terms, in the same order."""
    assert BM25Encoder().tokenize(PROSE) == bm25s_terms(PROSE, stopwords=sorted(ENGLISH_STOP_WORDS))
    # with its own (Lucene's) list bm25s keeps our extra stop words, and nothing else differs
    ours = BM25Encoder().tokenize(PROSE)
    theirs = bm25s_terms(PROSE)
    assert [t for t in theirs if t not in ours] == ["were", "over", "while", "them", "so", "which", "against"]
    assert [t for t in theirs if t not in ENGLISH_STOP_WORDS] == ours


def test_stemmer_is_snowball_english_not_porter():
    """Lucene's EnglishAnalyzer stems with the original Porter algorithm; we use its successor
    Snowball English (Porter2), as bm25s recommends: fewer over-stemmed words."""
    porter = Stemmer.Stemmer("porter")
    enc = BM25Encoder()
    words = {"generalization": ("gener", "general"), "generously": ("gener", "generous"), "dying": ("dy", "die"),
             "skies": ("ski", "sky"), "news": ("new", "news")}
    for word, (by_porter, by_snowball) in words.items():
        assert porter.stemWord(word) == by_porter and enc.tokenize(word) == [by_snowball]


def test_joined_tokens_differ_deliberately_from_w_runs():
    """bm25s (like the \\w+ analysis before) cuts dates, amounts and codes at every punctuation mark and
    drops single characters; we keep them whole with their parts, and cut clitics instead of leaving
    their letters behind."""
    text = "Date: 25/12/2018 TOTAL RM12.50 INV-00421 John's e-mail ali@shop.com.my"
    assert bm25s_terms(text, stopwords=sorted(ENGLISH_STOP_WORDS)) == [
        "date", "25", "12", "2018", "total", "rm12", "50", "inv", "00421", "john", "mail", "ali", "shop", "com",
    ]
    assert BM25Encoder().tokenize(text) == [
        "date", "25/12/2018", "25", "12", "2018", "total", "rm12.50", "rm", "12.50", "inv-00421", "inv", "00421",
        "john", "e-mail", "mail", "ali@shop.com.my", "shop.com.my", "ali", "shop", "com",
    ]
