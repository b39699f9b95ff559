"""Similarity of two ranked lists: overlap@k, rank-biased overlap, NDCG@k.

Pure functions over lists of distinct, hashable item ids (the comparator in
``ranked.py`` extracts and de-duplicates them). Every measure is 1 for two
identical rankings and 0 for two rankings with nothing in common.

Rank-biased overlap (RBO) follows W. Webber, A. Moffat and J. Zobel, "A
similarity measure for indefinite rankings", ACM Transactions on Information
Systems 28(4), 2010 (referred to below as WMZ10). With ``X_d`` the number of
items two rankings share in their first ``d`` positions and ``A_d = X_d / d``
the agreement at depth ``d``,

    RBO(S, T, p) = (1 - p) * sum_{d >= 1} p^(d-1) * A_d          (WMZ10, Eq. 7)

The persistence ``p`` sets how top-heavy it is: the first ``d`` ranks carry
``rbo_weight(p, d)`` of the total weight (WMZ10, Eq. 21; 86% for the first 10
at p = 0.9). Only prefixes are ever seen, so WMZ10 gives

* ``RBO_EXT`` (Eq. 30 for two prefixes of the same length ``k``; Eq. 32 for
  lengths ``s < l``): the agreement seen at the last depth is assumed to hold
  for ever - the point estimate;
* ``RBO_MIN`` (Eq. 11): nothing beyond the prefixes agrees - a lower bound.

NDCG follows K. Järvelin and J. Kekäläinen, "Cumulated gain-based evaluation
of IR techniques", ACM TOIS 20(4), 2002: ``DCG@k = sum_i gain(item_i) /
log2(i + 1)``, normalised by the DCG of the ideal ordering.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

Ranking = Sequence[Hashable]


def check_persistence(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError("p (persistence) must be in (0, 1)")
    return float(p)


def overlaps(short: Ranking, long: Ranking) -> list[int]:
    """``X_d`` for d = 1..len(long): items of ``short[:d]`` that are in ``long[:d]``.

    For d beyond len(short) the short list contributes only what it has
    (``|short ∩ long[:d]|``), as in WMZ10's uneven-length case.
    """
    seen_short: set[Hashable] = set()
    seen_long: set[Hashable] = set()
    shared = 0
    out = []
    for d in range(len(long)):
        b = long[d]
        if d < len(short):
            a = short[d]
            if a == b:
                shared += 1
            else:
                shared += (a in seen_long) + (b in seen_short)
            seen_short.add(a)
        else:
            shared += b in seen_short
        seen_long.add(b)
        out.append(shared)
    return out


def rbo_ext(s: Ranking, t: Ranking, p: float) -> float:
    """Extrapolated RBO of two prefixes (WMZ10 Eq. 30, and Eq. 32 when their lengths differ).

    Assumes the agreement seen at the end of the prefixes continues below
    them; identical prefixes give 1, disjoint ones 0. Two empty lists give 1.
    """
    p = check_persistence(p)
    short, long = (s, t) if len(s) <= len(t) else (t, s)
    sl, ll = len(short), len(long)
    if ll == 0:
        return 1.0
    if sl == 0:
        return 0.0
    x = overlaps(short, long)
    x_s, x_l = x[sl - 1], x[ll - 1]
    total = 0.0
    weight = 1.0
    for d in range(1, ll + 1):
        weight *= p  # p^d
        total += x[d - 1] / d * weight
        if d > sl:
            total += x_s * (d - sl) / (sl * d) * weight
    return (1 - p) / p * total + ((x_l - x_s) / ll + x_s / sl) * weight


def rbo_min(s: Ranking, t: Ranking, p: float) -> float:
    """RBO's lower bound from the prefixes: nothing unseen agrees (WMZ10 Eq. 11).

    Lengths may differ: the shorter list's unseen positions match nothing.
    """
    p = check_persistence(p)
    short, long = (s, t) if len(s) <= len(t) else (t, s)
    ll = len(long)
    if ll == 0:
        return 1.0
    if not short:
        return 0.0
    x = overlaps(short, long)
    x_k = x[ll - 1]
    total = 0.0
    weight = 1.0
    for d in range(1, ll + 1):
        weight *= p
        total += (x[d - 1] - x_k) / d * weight
    return (1 - p) / p * (total - x_k * math.log(1 - p))


def rbo_weight(p: float, d: int) -> float:
    """The share of RBO's weight on the first ``d`` ranks (WMZ10 Eq. 21).

    ``1 - p^(d-1) + (1-p)/p * d * (ln(1/(1-p)) - sum_{i<d} p^i / i)``.
    """
    p = check_persistence(p)
    if d < 1:
        return 0.0
    head = sum(p**i / i for i in range(1, d))
    return 1 - p ** (d - 1) + (1 - p) / p * d * (math.log(1 / (1 - p)) - head)


def jaccard(a: Ranking, b: Ranking) -> float:
    """Shared items over all items, the two lists taken as sets; 1 when both are empty."""
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    return 1.0 if union == 0 else len(sa & sb) / union


def dcg(gains: Sequence[float]) -> float:
    """``sum_i gain_i / log2(i + 1)``, ranks from 1."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains) if g)


def rank_gains(reference: Ranking) -> dict[Hashable, float]:
    """Graded relevance from the reference's order: m for its first item down to 1 for its last."""
    m = len(reference)
    return {item: float(m - i) for i, item in enumerate(reference)}


def ndcg(
    reference: Ranking, candidate: Ranking, gains: Mapping[Hashable, float] | None = None
) -> float | None:
    """NDCG of ``candidate`` with relevance taken from ``reference``.

    ``gains`` maps an item to its relevance (default: :func:`rank_gains` of
    the reference); items absent from it have none. Both lists should already
    be cut to the depth k. None when the reference has no gain at all (NDCG is
    undefined), except that two empty lists give 1.
    """
    if not reference and not candidate:
        return 1.0
    gains = rank_gains(reference) if gains is None else gains
    ideal = dcg(sorted((max(gains.get(item, 0.0), 0.0) for item in reference), reverse=True))
    if ideal <= 0.0:
        return None
    got = dcg([max(gains.get(item, 0.0), 0.0) for item in candidate])
    return min(got / ideal, 1.0)


@dataclass(frozen=True, slots=True)
class ListDiff:
    """Which items moved in or out of the top k."""

    new: tuple[Hashable, ...]  # in the candidate's top k, not in the reference's
    dropped: tuple[Hashable, ...]  # in the reference's top k, not in the candidate's
    shared: int


def list_diff(reference: Ranking, candidate: Ranking) -> ListDiff:
    """Items only in the candidate (its order), only in the reference (its order), shared."""
    ref, cand = set(reference), set(candidate)
    return ListDiff(
        tuple(item for item in candidate if item not in ref),
        tuple(item for item in reference if item not in cand),
        len(ref & cand),
    )
