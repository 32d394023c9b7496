"""Is a text layer readable text or junk? (A bad earlier OCR, a font without a usable encoding.)

:func:`assess` scores a text on statistics that hold across the languages written in Latin script
and need no word list on disk: the share of tokens that look like words (letters only, a plausible
case pattern, a vowel), of junk tokens (letters and digits mixed, stray punctuation inside a word,
runs of specks), of characters that no real text carries (private-use, replacement and control
characters), the share of tokens among the most common words of English, German, French, Spanish,
Italian, Portuguese and Dutch (the compact list below), and the length of the words (a bad OCR of
a blurred page reads short non-words: "ee ae Pan aah"). Numbers, formulas, identifiers and
single characters are neither words nor junk and do not count. Text in other scripts is judged by
its characters only, so it is never called garbled for being foreign.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["TextQuality", "assess"]

# Frequent words of each language, lower case, two letters or more. Running prose in any of these
# languages has a fifth or more of its tokens in this set; a scrambled encoding has none.
_WORDS = """
    about above according across act after again against ago all almost along already also
    although always am among an and another any anything are area around as ask at away back be
    became because become been before began being best better between big both but by call called
    came can cannot case change children city come could country course day days did different do
    does doing done down during each early either end enough even ever every example fact far few
    find first following for form found four from full further gave general get give given go going
    good got great group had half hand has have having he head help her here high him himself his
    home house how however if important in include including information into is it its itself
    just keep kind know known large last later least left less let life like line little long look
    made make making man many may me means might more most much must my name need never new next no
    not nothing now number of off often old on once one only open or order other others our out over
    own page part people per place point possible present problem provide public put rather really
    right said same saw say says second see seen set several shall she should show side since small
    so some something state still such system take than that the their them themselves then there
    therefore these they thing things think this those though three through thus time to today
    together too took toward two under until up upon us use used using very want was water way ways
    we well went were what when where whether which while who whole why will with within without
    work world would year years yet you your
    aber alle allem allen aller alles als also am an andere anderen auch auf aus bei beim bereits
    bis bzw da damit dann das dass daß dem den denen denn der des deshalb die dies diese diesem
    diesen dieser dieses doch dort durch ein eine einem einen einer eines er es etwa für gegen
    gibt hat hatte haben hier ich ihr ihre im immer in ist jedoch jede jeder jedes kann kein keine
    man mehr mit muss nach nicht noch nun nur ob oder ohne schon sehr sei sein seine sich sie sind
    so sowie über um und uns unter viel vom von vor war waren was weil welche wenn werden wie wieder
    wir wird wo wurde wurden zu zum zur zwischen gilt dann also sodass
    au aux avec ce cela celle ces cet cette comme dans de des deux donc dont du elle elles en entre
    est et été être fait faire il ils la le les leur leurs lors mais même ne nous on ont ou où par
    pas peut plus pour qu que quel quelle qui sa sans se selon ses si son sont sous sur tous tout
    toute toutes très un une vers vous ainsi afin depuis chaque
    al como con cual cuando del desde donde el ella ellos en entre era es esa ese eso esta este
    está están fue ha han hasta hay las lo los más mientras muy ni nos para pero por porque puede
    que se ser si sin sobre son su sus también todo todos una uno ya
    alla anche che chi come con cui dal dalla degli dei del della delle di gli ha il lo nel nella
    non per più quale questa questo sono tra
    ao aos às da das do dos em essa esse está foi mais mas na nas no nos num numa pela pelo pelos
    quando são seu seus sua suas um uma
    aan als bij dat deze die dit door een en er het hij hoe ik is maar met naar niet nog of ook
    op over te tot uit van voor was wat worden wordt zijn zich zo
"""
_COMMON = frozenset(_WORDS.split())

_EDGE = "()[]{}<>\"'“”‘’«»„‚.,;:!?…¡¿*•·–—-_/\\|#§¶†‡°"
_VOWELS = frozenset("aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœ")
_NUMBER = re.compile(r"[+\-−±]?[$€£¥]?\d[\d.,:/%°'’+\-–x×]*[a-zA-Z]{0,3}\.?")
_COMPOUND = re.compile(r"[^\W\d_]+(?:[-'’.&/@_][^\W\d_]+)*\.?")  # e.g. and/or don't co-op U.S.
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[_:.][A-Za-z0-9]+)+|(?:[A-Z]?[a-z]+){2,}|[A-Z]{2,}[a-z]+")
_MATH = set("=+−<>≤≥∈∉⊂⊆∪∩→←⇒⇔↦×·∑∏∫√∞≈≠∀∃∂∇^~*/|′()[]{}")
_URLISH = re.compile(r"(?:https?://|www\.|\S+@\S+\.\w)")
_JUNK_INNER = set(",;:'\"!?`¦")


@dataclass(frozen=True, slots=True)
class TextQuality:
    tokens: int  # tokens judged (words, non-words and junk; numbers and formulas left out)
    word_ratio: float  # of the judged tokens, those that look like words
    common_ratio: float  # of the judged tokens, those among the most common words
    junk_ratio: float  # of the judged tokens: mixed letters and digits, punctuation inside, specks
    bad_char_ratio: float  # private-use, replacement and control characters among all characters
    vowel_ratio: float  # vowels among the Latin letters (about 0.35..0.45 in real text)
    mean_word_length: float  # letters per alphabetic token
    garbled: bool
    reason: str = ""

    @property
    def score(self) -> float:
        """Higher is better; compares two readings of the same page."""
        return (
            self.word_ratio
            - self.junk_ratio
            + 2 * min(self.common_ratio, 0.25)
            - 2 * self.bad_char_ratio
            - max(0.0, 3.8 - self.mean_word_length) / 4
        )


def _is_latin(ch: str) -> bool:
    return ch < "\u0250" or "\u1e00" <= ch <= "\u1eff"


def _bad_char(c: str) -> bool:
    return c == "\ufffd" or unicodedata.category(c) in ("Cc", "Co", "Cn", "Cs")


def assess(text: str, *, min_tokens: int = 12) -> TextQuality:
    """Score *text*. With fewer than *min_tokens* judged tokens only the characters are judged."""
    chars = [c for c in text if not c.isspace()]
    bad_ratio = sum(1 for c in chars if _bad_char(c)) / max(1, len(chars))
    words = common = junk = other = 0
    vowels = latin_letters = alpha_tokens = 0
    for tok in text.split():
        core = tok.strip(_EDGE)
        if not core:
            if len(tok) >= 2 and len(set(tok)) > 1 and not set(tok) <= set(".-–—_*•·="):
                junk += 1  # ",." "~|" ";'": OCR specks (not dot leaders or rules)
            continue
        if len(core) == 1 or _NUMBER.fullmatch(core) or _URLISH.match(core):
            continue
        if core.isalpha():
            if not all(_is_latin(c) for c in core):
                continue  # another script: not judged by its spelling
            low = core.lower()
            alpha_tokens += 1
            latin_letters += len(low)
            vowels += sum(1 for c in low if c in _VOWELS)
            if low in _COMMON:
                common += 1
                words += 1
            elif core.islower() or core.isupper() or (core[0].isupper() and core[1:].islower()):
                if any(c in _VOWELS for c in low) or core.isupper():
                    words += 1
                else:
                    other += 1  # "lll", "wrt": no vowel
            elif _IDENT.fullmatch(core):
                words += 1  # CamelCase identifier
            else:
                junk += 1  # "tHe", "qUicK": the case flips inside a word
            continue
        if any(c in _MATH or unicodedata.category(c) == "Sm" for c in core) or any(
            "\u0370" <= c <= "\u03ff" for c in core
        ):
            continue  # a formula: "k=0", "Zn/Bn", "d(P", "ϕ(S"
        if _COMPOUND.fullmatch(core) or _IDENT.fullmatch(core):
            words += 1
            continue
        letters = sum(c.isalpha() for c in core)
        digits = sum(c.isdigit() for c in core)
        if letters and digits and letters + digits == len(core) and (len(core) <= 4 or core.isupper()):
            continue  # "3D", "A4", "H2O", "COVID19", "06AUP1": codes
        if any(c in _JUNK_INNER for c in core) or (letters and digits):
            junk += 1  # "j,umps" "ll1e" "w0rd"
        else:
            other += 1
    n = words + junk + other
    word_ratio = words / max(1, n)
    common_ratio = common / max(1, n)
    junk_ratio = junk / max(1, n)
    vowel_ratio = vowels / latin_letters if latin_letters else 0.4
    mean_len = latin_letters / alpha_tokens if alpha_tokens else 5.0
    reason = ""
    if bad_ratio >= 0.1:
        reason = f"{bad_ratio:.0%} of the characters are private-use, replacement or control characters"
    elif n >= min_tokens:
        if junk_ratio >= 0.4 or (junk_ratio >= 0.25 and common_ratio < 0.2):
            reason = f"{junk_ratio:.0%} of the tokens are junk (mixed letters, digits and punctuation)"
        elif word_ratio < 0.5:
            reason = f"only {word_ratio:.0%} of the tokens look like words"
        elif common_ratio < 0.03 and latin_letters >= 150 and not 0.27 <= vowel_ratio <= 0.56:
            reason = f"no common words and {vowel_ratio:.0%} vowels: a scrambled encoding"
        elif n >= 20 and common_ratio < 0.2 and (mean_len < 3.0 or (mean_len < 3.4 and vowel_ratio > 0.45)):
            reason = f"short non-words ({mean_len:.1f} letters a word, {common_ratio:.0%} common words)"
    return TextQuality(
        tokens=n,
        word_ratio=round(word_ratio, 3),
        common_ratio=round(common_ratio, 3),
        junk_ratio=round(junk_ratio, 3),
        bad_char_ratio=round(bad_ratio, 3),
        vowel_ratio=round(vowel_ratio, 3),
        mean_word_length=round(mean_len, 2),
        garbled=bool(reason),
        reason=reason,
    )
