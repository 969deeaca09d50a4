"""Numbers over a run: retrieval quality, latency percentiles, and classification of labels.

Retrieval metrics compare the ranked source paths of an answer with the expected sources:
hit@k (any expected source in the top k), reciprocal rank of the first one, and recall@k (the
share of expected sources found). Labelled cases form a binary classification, the positive
class being "answerable": the app answered (true) or declined (false).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class RetrievalScores:
    """Retrieval quality of one case."""

    hit: float
    reciprocal_rank: float
    recall: float


def retrieval_scores(ranked: Sequence[str], expected: Sequence[str], k: int) -> RetrievalScores:
    """hit@k, reciprocal rank (within k) and recall@k of ranked paths against expected ones."""
    wanted = set(expected)
    top = list(dict.fromkeys(ranked))[:k]
    first = next((rank for rank, path in enumerate(top, 1) if path in wanted), None)
    found = wanted.intersection(top)
    return RetrievalScores(
        hit=1.0 if first else 0.0,
        reciprocal_rank=1.0 / first if first else 0.0,
        recall=len(found) / len(wanted) if wanted else 0.0,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float | None:
    """The mean, or None when there is nothing to average."""
    return statistics.fmean(values) if values else None


@dataclass(frozen=True)
class Classification:
    """A confusion matrix of answered-or-not against the labels, and what follows from it."""

    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int

    @property
    def total(self) -> int:
        return self.true_positive + self.false_positive + self.false_negative + self.true_negative

    @property
    def accuracy(self) -> float:
        return (self.true_positive + self.true_negative) / self.total if self.total else 0.0

    @property
    def precision(self) -> float:
        predicted = self.true_positive + self.false_positive
        return self.true_positive / predicted if predicted else 0.0

    @property
    def recall(self) -> float:
        actual = self.true_positive + self.false_negative
        return self.true_positive / actual if actual else 0.0

    @property
    def f1(self) -> float:
        both = self.precision + self.recall
        return 2 * self.precision * self.recall / both if both else 0.0


def classify(pairs: Sequence[tuple[bool, bool]]) -> Classification:
    """A confusion matrix from (actually answerable, answered) pairs."""
    return Classification(
        true_positive=sum(actual and predicted for actual, predicted in pairs),
        false_positive=sum(not actual and predicted for actual, predicted in pairs),
        false_negative=sum(actual and not predicted for actual, predicted in pairs),
        true_negative=sum(not actual and not predicted for actual, predicted in pairs),
    )
