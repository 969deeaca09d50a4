"""Turn a user's question into safe full-text search terms.

Questions are free text: quotes, ``?``, ``-``, ``AND``, ``NEAR`` or ``*`` mean something to
FTS5 and would raise or change the query. Only word tokens are kept, each is quoted by the
backend, and the terms are OR-ed so that ranking (not an all-terms filter) decides.
Stop words are dropped: in an OR query, "the" or "what" would match almost every chunk and
make an unrelated question look answerable.
"""

from __future__ import annotations

import re

MAX_TERMS = 32

_STOPWORDS_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves please tell know anything something
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str) -> list[str]:
    """Distinct lower-cased word terms of ``text``, stop words removed, in order."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.lower()):
        term = match.group(0).strip("_")
        if not term or term in STOPWORDS or term in seen:
            continue
        seen[term] = None
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)


def fts5_match(terms: list[str]) -> str:
    """An FTS5 MATCH expression: every term a quoted string, OR-ed together."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
