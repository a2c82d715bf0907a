"""Named people and organisations, found by the shape of the text: runs of capitalised words.

No statistical tagger: the English models that would do this better (spaCy's, Stanza's, GLiNER's) are
fetched from outside the package index or downloaded at run time. The rules: a run of capitalised words
(joined by "of", "de", "&", ...) is a name unless it is an ordinary word that merely starts a sentence,
a place, a nationality or a term of the trade. Each name is then called a person or an organisation
where a cue says which (a title, "said", "Ltd", an acronym), else left as either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from morris_mlx.review.flag import Flag
from morris_mlx.review.sentences import Sentence
from morris_mlx.review.spans import overlaps
from morris_mlx.review.vocabulary import (
    FUNCTION_WORDS,
    ORG_WORDS,
    PERSON_FOLLOWERS,
    PERSON_TITLES,
    TERMS,
    is_common_word,
    is_not_a_name,
)

# A word: letters and digits, with inner hyphens, ampersands, apostrophes and dots ("AT&T", "J.P.").
_TOKEN = re.compile(r"[^\W_](?:[\w&'’.-]*[^\W_])?(?:['’](?=\s))?")
_CONNECTORS = frozenset("of de del della der den van von du la le da di al bin el y & and for the".split())
_PARTICLES = frozenset("of de del della der den van von du la le da di al bin el y &".split())
_ORG_LINKS = frozenset("of &".split())
_ABBREVIATED = frozenset("Mr Mrs Ms Dr St Prof Gen Sen Rep Jr Sr".split())
_BETWEEN = re.compile(r"[ \t]+|[ \t]*\n[ \t]*")  # names may wrap onto the next line, never across paragraphs
_OPENERS = set("\"'“‘([*_#>-:–—") | {"\u2014"}
_POSSESSIVE = re.compile(r"['’]s?$")
_ORDINARY_SHAPE = re.compile(r"(?:ly|ing|ings|ed|tion|tions|sion|sions|ment|ments|ness|ity|ities|ists|ers|ics|ies|ous|ive|able|ible|al|ful|less)$|[^su]s$")
_SPEAKER_BEFORE = re.compile(r"\b(?:said|says|added|told|according to|quoted|quoting)\s+$")
_ORG_BEFORE = re.compile(
    r"(?:\b(?:boss|chief executive|CEO|CFO|CTO|head|chairman|chair|owner|founder|president|shareholders?|"
    r"customers|analysts?|staff|employees|engineers|executives?)\s+(?:of|at)\s+(?:the\s+)?|\b(?:at|rival|operator|"
    r"vendor|company|firm|group|telco|carrier|regulator|operators|vendors|companies|firms|telcos)\s+)$"
)


def _capitalised(token: str) -> bool:
    return token[0].isupper() or (token[0].isdigit() and any(c.isupper() for c in token))


def _starts_sentence(text: str, start: int, sentence_starts: set[int]) -> bool:
    """At a sentence start, or just after an opening quote, bracket, colon, dash or Markdown marker."""
    if start in sentence_starts:
        return True
    i = start
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    j = i
    while j > 0 and text[j - 1] in _OPENERS:
        j -= 1
    return j != i and (j in sentence_starts or j == 0 or text[j - 1] in " \t\n")


def _title_case_lines(text: str, sentences: list[Sentence]) -> set[int]:
    """Starts of sentences that are headings or headlines in Title Case: every word there is capitalised."""
    found = set()
    for s in sentences:
        words = [w for w in re.findall(r"[^\W\d_][\w'’-]*", s.text) if len(w) > 3]
        if (s.heading or s.first_in_block) and words and sum(w[0].isupper() for w in words) >= 0.6 * len(words):
            if s.heading or len(words) <= 12:
                found.add(s.start)
    return found


def _classify(tokens: list[str], before: str, after: str) -> str:
    last = tokens[-1].rstrip(".")
    if (
        any(t in ORG_WORDS for t in tokens)
        or any(t.isupper() and len(t) > 1 for t in tokens)
        or any("&" in t or re.search(r"[a-z][A-Z]", t) or re.match(r"[A-Z]-[A-Z]", t) for t in tokens)
        or last in ORG_WORDS
    ):
        return "organisation"
    if _ORG_BEFORE.search(before[-40:]):
        return "organisation"
    if PERSON_TITLES.search(before[-40:]):
        return "person"
    if len(tokens) >= 2 and (PERSON_FOLLOWERS.match(after[:60]) or _SPEAKER_BEFORE.search(before[-30:])):
        return "person"  # "said Börje Ekholm", "Jane Doe, the analyst": a full name (a company says too)
    return "person or organisation"


DETAIL = {
    "organisation": "organisation: check it exists and that what is said about it is true",
    "person": "person: check the name, their role and what they are said to have said or done",
    "person or organisation": "name: check who or what it is, and what is said about it",
}


def find_names(
    text: str,
    sentences: list[Sentence],
    vocabulary: frozenset[str] = frozenset(),
    exclude: Iterable[Flag] = (),
) -> list[Flag]:
    """People and organisations named in `text`. `vocabulary` holds ordinary lower-case words (see
    `vocabulary.lowercase_words`); `exclude` spans (the dates) are never names."""
    taken = [(f.start, f.end) for f in exclude]
    starts = {s.start for s in sentences}
    headline_starts = _title_case_lines(text, sentences)
    headline_spans = [(s.start, s.end) for s in sentences if s.start in headline_starts]
    # Words seen capitalised away from a sentence start, in this text: proper nouns the writer used.
    tokens = list(_TOKEN.finditer(text))
    proper = {
        _POSSESSIVE.sub("", m.group(0))
        for m in tokens
        if _capitalised(m.group(0))
        and not _starts_sentence(text, m.start(), starts)
        and not overlaps(m.start(), m.end(), headline_spans)
    }
    flags: list[Flag] = []
    i = 0
    while i < len(tokens):
        run = _run(text, tokens, i, vocabulary)
        if not run:
            i += 1
            continue
        i = run[-1][0] + 1
        words = []
        for _, m in run:
            word = _POSSESSIVE.sub("", m.group(0))
            words.append((m.start(), m.start() + len(word), word))
        in_headline = overlaps(words[0][0], words[-1][1], headline_spans)
        if in_headline:
            # In a Title Case headline every word is capitalised: keep only words that look like names.
            keep = [w[2] in proper or not _ordinary(w[2], vocabulary) for w in words]
            segments = _segments(words, keep)
        else:
            segments = [words]
        for segment in segments:
            flag = _name_flag(text, segment, starts, proper, vocabulary, taken, single_start=not in_headline)
            if flag is not None:
                flags.append(flag)
    return flags


def _ordinary(word: str, vocabulary: frozenset[str]) -> bool:
    """An ordinary word, or one shaped like one (an adverb, a plural, a gerund) that the corpus lacks."""
    if is_common_word(word, vocabulary):
        return True
    return word[1:].islower() and bool(_ORDINARY_SHAPE.search(word.lower()))


def _segments(words: list[tuple[int, int, str]], keep: list[bool]) -> list[list[tuple[int, int, str]]]:
    out: list[list[tuple[int, int, str]]] = [[]]
    for word, kept in zip(words, keep, strict=True):
        if kept:
            out[-1].append(word)
        elif out[-1]:
            out.append([])
    return [seg for seg in out if seg]


def _name_flag(
    text: str,
    words: list[tuple[int, int, str]],
    starts: set[int],
    proper: set[str],
    vocabulary: frozenset[str],
    taken: list[tuple[int, int]],
    single_start: bool,
) -> Flag | None:
    words = list(words)
    before = len(words)
    # Leading words that are ordinary at a sentence start ("The", "According"), titles ("Mr") and
    # connectors are not part of the name; nor are trailing titles ("Vodafone CEO") or connectors.
    while words:
        start, _, word = words[0]
        at_start = single_start and _starts_sentence(text, start, starts)
        if word.lower() in _CONNECTORS or word in TERMS or (at_start and word.lower() in FUNCTION_WORDS):
            words.pop(0)
        elif at_start and word not in proper and len(words) == 1 and _ordinary(word, vocabulary):
            words.pop(0)
        else:
            break
    while words and (words[-1][2].lower() in _CONNECTORS or words[-1][2] in TERMS):
        words.pop()
    if not words or all(is_not_a_name(w[2]) for w in words):
        return None
    if len(words) == 1 < before and is_common_word(words[0][2], vocabulary):
        return None  # "Internet of Things", "Cloud Computing": a term's ordinary last word, left alone
    if len(words) == 1 and (words[0][2].lower() in FUNCTION_WORDS or len(words[0][2]) == 1):
        return None  # "We'll" or "He" in the middle of a sentence, a stray capital letter
    start, end = words[0][0], words[-1][1]
    if overlaps(start, end, taken):
        return None
    kind = _classify([w[2] for w in words], text[max(0, start - 60) : start], text[end : end + 80])
    return Flag("name", text[start:end], start, end, DETAIL[kind])


def _org_head(run: list[tuple[int, re.Match]], vocabulary: frozenset[str]) -> bool:
    """Whether the name so far reads as the head of an organisation's name ("Bank", "Port", "Ministry")."""
    last = run[-1][1].group(0)
    return last in ORG_WORDS or (len(run) == 1 and is_common_word(last, vocabulary))


def _run(
    text: str, tokens: list[re.Match], i: int, vocabulary: frozenset[str] = frozenset()
) -> list[tuple[int, re.Match]]:
    """The run of capitalised tokens starting at tokens[i] (with connectors inside it), or []."""
    if not _capitalised(tokens[i].group(0)):
        return []
    run = [(i, tokens[i])]
    j = i + 1
    while j < len(tokens):
        prev = run[-1][1]
        if _POSSESSIVE.search(prev.group(0)):
            break  # "Vodafone's chief executive": the possessive ends the name
        if not _joins(text, prev, tokens[j]):
            break
        word = tokens[j].group(0)
        if _capitalised(word):
            run.append((j, tokens[j]))
            j += 1
            continue
        # Particles of a person's name ("Della Valle", "von der Leyen") join a name; "of" and "&" join an
        # organisation's ("Bank of America", "Procter & Gamble"), not a person to an employer.
        k = j
        while k < len(tokens) and tokens[k].group(0) in _PARTICLES and _joins(text, tokens[k - 1], tokens[k]):
            k += 1
        ends_in_name = k < len(tokens) and k > j and _capitalised(tokens[k].group(0)) and _joins(text, tokens[k - 1], tokens[k])
        if ends_in_name and (word not in _ORG_LINKS or _org_head(run, vocabulary)):
            run += [(n, tokens[n]) for n in range(j, k + 1)]
            j = k + 1
            continue
        break
    return run


def _joins(text: str, left: re.Match, right: re.Match) -> bool:
    """Whether two tokens are adjacent words of one name: only spaces between them (a line break at most),
    or the full stop of an initial or an abbreviation ("J. Smith", "Inc. and")."""
    gap = text[left.end() : right.start()]
    if _BETWEEN.fullmatch(gap):
        return True
    word = left.group(0)
    initial = bool(re.fullmatch(r"(?:[A-Z]\.)*[A-Z]", word))  # "J" or "J.P", not "UK"
    return (initial or word in _ABBREVIATED) and bool(re.fullmatch(r"\.[ \t]+", gap))
