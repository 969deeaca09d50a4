"""Synthetic documents, chunks, vectors and questions for the benchmark, reproducible by seed.

Text follows Zipf's law over an English-like vocabulary: the usual stop words are the most
frequent words (about four in ten, as in English prose), then 30,000 made-up words whose
frequency falls with their rank as content words do in English (the most common one is in about
one chunk in seven). A chunk has about 150 words (about 1,000 characters: the
generated project's 256-token chunks). Questions take three to five content words from one
chunk, so keyword search always finds something and common words make it work.

Vectors are unit vectors in `clusters` directions plus noise, like embeddings of documents on
a few hundred topics; a question's vector is a noisy copy of its chunk's vector.

Imported by the scripts that run inside a generated project (its own Python and numpy).
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy.typing as npt

STOPWORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "can",
    "more",
    "about",
    "up",
    "what",
    "out",
    "into",
    "than",
    "then",
    "its",
    "only",
    "other",
    "some",
    "could",
    "time",
]
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["qua", "sho", "tri", "xen"]
CONTENT_WORDS = 30_000
WORDS_PER_CHUNK = 150
STOPWORD_SHARE = 0.4
RANK_OFFSET = 100
BLOCK = 1000
NOISE = 0.045


def vocabulary() -> list[str]:
    """30,000 distinct made-up words of two to four syllables (no stop word among them)."""
    rng = random.Random(1)  # noqa: S311 - synthetic data
    words: dict[str, None] = {}
    stop = set(STOPWORDS)
    while len(words) < CONTENT_WORDS:
        word = "".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))
        if word not in stop:
            words.setdefault(word, None)
    return list(words)


class Corpus:
    """Chunks of text, their vectors and questions about them."""

    def __init__(self, dims: int = 768, clusters: int = 256, seed: int = 7) -> None:
        self.words = np.array(vocabulary())
        self.stop = np.array(STOPWORDS)
        # Zipf-Mandelbrot: content words rank after the hundred or so function words of English,
        # so the most common one is in about one chunk in seven, not in every chunk.
        ranks = np.arange(1, CONTENT_WORDS + 1, dtype=np.float64) + RANK_OFFSET
        self.p_content = (1 / ranks) / (1 / ranks).sum()
        stop_ranks = np.arange(1, len(STOPWORDS) + 1, dtype=np.float64)
        self.p_stop = (1 / stop_ranks) / (1 / stop_ranks).sum()
        self.dims = dims
        self.seed = seed
        centres = np.random.default_rng(seed).standard_normal((clusters, dims), dtype=np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)

    def texts(self, start: int, count: int) -> list[str]:
        """The text of chunks `start` .. `start + count` (a chunk's text depends on its number)."""
        return self._slice(self._block_texts, start, count)

    def vectors(self, start: int, count: int) -> npt.NDArray[np.float32]:
        """Unit vectors of chunks `start` .. `start + count`: a topic direction plus noise."""
        return np.stack(self._slice(self._block_vectors, start, count))

    def _slice(self, block: Callable[[int], Any], start: int, count: int) -> list[Any]:
        items: list[Any] = []
        for number in range(start // BLOCK, (start + count - 1) // BLOCK + 1):
            first = number * BLOCK
            items.extend(block(number)[max(start - first, 0) : start + count - first])
        return items

    @functools.lru_cache(maxsize=4)  # noqa: B019 - a few blocks, for the corpus's lifetime
    def _block_texts(self, number: int) -> list[str]:
        rng = np.random.default_rng([self.seed, 0, number])
        shape = (BLOCK, WORDS_PER_CHUNK)
        content = rng.choice(len(self.words), size=shape, p=self.p_content)
        stops = rng.choice(len(self.stop), size=shape, p=self.p_stop)
        use_stop = rng.random(shape) < STOPWORD_SHARE
        tokens = np.where(use_stop, self.stop[stops], self.words[content])
        return [" ".join(row) + "." for row in tokens.tolist()]

    @functools.lru_cache(maxsize=4)  # noqa: B019
    def _block_vectors(self, number: int) -> npt.NDArray[np.float32]:
        rng = np.random.default_rng([self.seed, 1, number])
        topic = rng.integers(0, len(self.centres), size=BLOCK)
        noise = rng.standard_normal((BLOCK, self.dims), dtype=np.float32) * NOISE
        vectors = self.centres[topic] + noise
        unit: npt.NDArray[np.float32] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return unit

    def questions(self, total: int, count: int) -> list[tuple[str, npt.NDArray[np.float32]]]:
        """`count` questions about chunks among the first `total`: text and query vector."""
        rng = random.Random(self.seed + total)  # noqa: S311 - synthetic data
        asked = []
        for _ in range(count):
            number = rng.randrange(total)
            words = [w for w in self.texts(number, 1)[0].rstrip(".").split() if w not in STOPWORDS]
            picked = rng.sample(sorted(set(words)), k=min(len(set(words)), rng.randint(3, 5)))
            text = f"What does the guide say about {' and '.join(picked)}?"
            vector = self.vectors(number, 1)[0]
            noisy = vector + np.random.default_rng(number).standard_normal(self.dims) * 0.03
            asked.append((text, (noisy / np.linalg.norm(noisy)).astype(np.float32)))
        return asked


def documents(corpus: Corpus, chunks: int, per_document: int = 6) -> Iterator[tuple[str, str]]:
    """Markdown documents with headings: (file name, text), about `per_document` chunks each."""
    batch = 600
    number = 0
    for start in range(0, chunks, batch):
        texts = corpus.texts(start, min(batch, chunks - start))
        for first in range(0, len(texts), per_document):
            group = texts[first : first + per_document]
            sections = "\n\n".join(f"## Section {n}\n\n{text}" for n, text in enumerate(group, 1))
            yield f"doc{number:06d}.md", f"# Document {number}\n\n{sections}\n"
            number += 1
