"""The garbled-text test that decides whether a PDF text layer is re-read by OCR."""

from __future__ import annotations

import random

import pytest

from mm_rag_plugin.readers._text_quality import assess

ENGLISH = (
    "Dense passage retrieval finds the passages that answer a question by comparing their "
    "embeddings with the embedding of the question. It is trained on pairs of questions and "
    "passages, and it outperforms a strong sparse baseline on most of the open-domain question "
    "answering datasets that were tested in this paper."
)
GERMAN = (
    "Ein topologischer Raum heißt zusammenhängend, wenn er sich nicht als Vereinigung von zwei "
    "disjunkten, nichtleeren, offenen Mengen schreiben lässt. Jeder wegzusammenhängende Raum ist "
    "auch zusammenhängend, aber die Umkehrung gilt nicht, wie das folgende Beispiel zeigt."
)
FRENCH = (
    "Le plan directeur de transport actif de la municipalité propose des actions pour que les "
    "résidents puissent se déplacer à pied ou à vélo en toute sécurité, et il établit les "
    "priorités des investissements pour les dix prochaines années dans chacun des secteurs."
)
MATH = (
    "Beweis: Sei f: X → Y stetig und x ∈ X. Dann gilt d(P, Q) ≤ d(P, R) + d(R, Q) für alle "
    "P, Q, R ∈ X, also ist d(ϕ(P), ϕ(Q)) = d(P, Q) und a0 − dim B0 = b0 mit k=0 und (−1)k bk."
)
UML = (
    "«type» Network Abstract Model::NetworkLinearElement + geometry: GB_Curve [0..1] "
    "«descriptiveEvolution» ManMadePointEvent - HydrographicEntityClassName: char "
    "- ManMadeHydrographicEntityNID: UUID - ManMadeStatus: CL_Manmade Status - ExternalID: DT_UUID"
)
TOC = "Inhaltsverzeichnis 1 Topologische Grundbegriffe 2 " + " ".join(
    f"1.{k} Abschnitt {'. ' * 30}{k * 3}" for k in range(1, 8)
)


@pytest.mark.parametrize("text", [ENGLISH, GERMAN, FRENCH, MATH, UML, TOC])
def test_real_text_is_not_garbled(text: str) -> None:
    q = assess(text)
    assert not q.garbled, q


def _shift(text: str, k: int = 5) -> str:
    out = []
    for c in text:
        if "a" <= c <= "z":
            out.append(chr((ord(c) - 97 + k) % 26 + 97))
        elif "A" <= c <= "Z":
            out.append(chr((ord(c) - 65 + k) % 26 + 65))
        else:
            out.append(c)
    return "".join(out)


def _bad_ocr(text: str, rate: float, seed: int = 1) -> str:
    rnd = random.Random(seed)
    subs = {
        "h": "li",
        "e": "c",
        "o": "0",
        "l": "1",
        "m": "rn",
        "i": "l",
        "a": "n",
        "t": "f",
        "u": "n",
        "s": "5",
    }
    out = []
    for c in text:
        r = rnd.random()
        if c in subs and r < rate:
            out.append(subs[c])
        elif r < rate / 4:
            out.append(rnd.choice(",.;:'~|^"))
        else:
            out.append(c)
    return "".join(out)


def test_garbled_text_is_found() -> None:
    long_english = " ".join([ENGLISH] * 3)
    cases = {
        "scrambled encoding": _shift(long_english),
        "private-use glyphs": "".join(chr(0xE000 + ord(c) % 200) if c.isalpha() else c for c in ENGLISH),
        "OCR junk": _bad_ocr(long_english, 0.5),
        "specks": " ".join(["~", "|", "ll", "1l", "..", ";:", "I", "—", "ii", "',"] * 20),
        # what Tesseract reads from a page scanned far too small
        "blurred page": "Pan aah he mbit Aen pags cae Pa Lay egy A sci dee ed eee ae ae fateh ef e lergpeegee "
        "cake Lech page of thee eet ae eo i ke eect eed peed age Apne aD Dd srs ni Aoki fe Pan Pap rd ba a",
    }
    for name, text in cases.items():
        q = assess(text)
        assert q.garbled, (name, q)
        assert q.reason
    # a clean reading of the same page scores higher than any garbled one
    assert assess(long_english).score > max(assess(t).score for t in cases.values()) + 0.3


def test_short_text_is_judged_by_its_characters_only() -> None:
    assert not assess("Fig. 3 ll1e").garbled  # too few words to judge
    assert assess("\ufffd\ufffd\ufffd ab").garbled  # replacement characters
