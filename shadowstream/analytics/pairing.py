"""Which A/A control is each challenger's noise floor and latency baseline.

With several endpoint groups, each with its own control, a challenger is paired
with the control (in the same experiment) whose traffic overlaps its own the
most, endpoint by endpoint: the overlap of the two endpoint distributions,
sum over endpoints of min(share of challenger, share of control). Ties, and
challengers with no endpoint data yet, go to the first control in the given
order (the config's order). A control is never paired: it is the floor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from shadowstream.analytics.queries import Scope

Key = tuple[str, str]  # (experiment_id, challenger)
EndpointMix = Mapping[Key, Mapping[str, int]]


def endpoint_mix(scope: Scope) -> dict[Key, dict[str, int]]:
    """Comparisons per endpoint for every (experiment, challenger) in the scope."""
    mix: dict[Key, dict[str, int]] = {}
    for r in scope.run("endpoints").dicts():
        key = (str(r["experiment_id"]), str(r["challenger"]))
        mix.setdefault(key, {})[str(r["endpoint"])] = int(r["comparisons"])
    return mix


def overlap(a: Mapping[str, int], b: Mapping[str, int]) -> float:
    """Shared mass of two endpoint distributions, in [0, 1]."""
    total_a, total_b = sum(a.values()), sum(b.values())
    if total_a <= 0 or total_b <= 0:
        return 0.0
    return sum(min(n / total_a, b.get(e, 0) / total_b) for e, n in a.items())


def pair_controls(keys: Iterable[Key], controls: Sequence[str], mix: EndpointMix) -> dict[Key, str]:
    """(experiment, challenger) -> the name of its control, or "" when it has none."""
    keys = list(keys)
    present = {(e, name) for e, name in keys if name in controls}
    pairs: dict[Key, str] = {}
    for experiment, name in keys:
        if name in controls:
            pairs[(experiment, name)] = ""
            continue
        candidates = [c for c in controls if (experiment, c) in present]
        if not candidates:
            pairs[(experiment, name)] = ""
            continue
        mine = mix.get((experiment, name), {})
        scored = [
            (overlap(mine, mix.get((experiment, c), {})), -i, c) for i, c in enumerate(candidates)
        ]
        pairs[(experiment, name)] = max(scored)[2]
    return pairs
