"""Noise awareness (Diffy's best idea): learn which JSON paths differ even champion vs champion.

A ``control`` challenger re-runs the champion model. Every control comparison
is an A/A test: whatever differs there (random ids, timestamps, sampling
temperature) is noise, not a regression. The learner counts, per endpoint,
how often each path differs between champion and control; a path that
differs in at least ``min_rate`` of at least ``min_samples`` control
comparisons is *noisy* and is left out of every comparison on that endpoint,
the control's own included (the comparison lists it in ``ignored_paths``).

Each endpoint learns from its own control, diffed with that control's
comparator options (``observe(..., differ=...)``): a tolerance or an unordered
list configured for one endpoint's control says nothing about another's.

* Paths are generic (``$.items[*].id``), so one noisy field inside list items
  is one path.
* Counts decay: every ``window`` samples they are halved, so a path that
  stops being noisy (a fixed bug, a new champion) is forgotten, and memory is
  flat however long it runs. A noisy path stays noisy until its rate falls
  below half of ``min_rate`` (no flapping around the threshold).
* At most ``max_paths`` distinct paths per endpoint and ``max_scopes``
  endpoints are tracked; beyond that, new ones are counted as dropped.
* State is per process (each router instance learns on its own partitions).
  It survives restarts: the router writes changed scopes to a compacted topic
  (:func:`export_state` / :func:`restore_state`) and reads them back when it
  starts. Until ``min_samples`` control comparisons have been seen on an
  endpoint the model is not :meth:`ready` there; comparisons judged meanwhile
  are provisional (see stream_agents.comparison).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.json_diff import JsonComparator
from shadowstream.stream_agents.comparators.paths import generic_path

Scope = tuple[str, str]
_NOTHING: frozenset[str] = frozenset()


@dataclass(slots=True)
class _ScopeState:
    samples: float = 0.0
    counts: dict[str, float] = field(default_factory=dict)
    noisy: frozenset[str] = _NOTHING
    dropped_paths: int = 0


class NoiseLearner:
    def __init__(
        self,
        *,
        min_rate: float = 0.2,
        min_samples: int = 50,
        window: int = 10_000,
        max_paths: int = 1_000,
        max_scopes: int = 10_000,
        per_endpoint: bool = True,
        differ: JsonComparator | None = None,
    ) -> None:
        if not 0.0 < min_rate <= 1.0:
            raise ConfigError("noise min_rate must be in (0, 1]")
        if min_samples < 1 or window < 2 or max_paths < 1 or max_scopes < 1:
            raise ConfigError(
                "noise min_samples, window, max_paths and max_scopes must be positive"
            )
        self.min_rate = min_rate
        self.min_samples = min_samples
        self.window = max(window, 2 * min_samples)
        self.max_paths = max_paths
        self.max_scopes = max_scopes
        self.per_endpoint = per_endpoint
        # how champion and control are diffed: the control's own structural options
        # (unordered lists, tolerance, normalization) so that, e.g., a set whose
        # order varies is not learned as noise when it is compared as a set anyway
        self._differ = differ or JsonComparator()
        self._scopes: dict[Scope, _ScopeState] = {}
        self._dirty: set[Scope] = set()
        self.dropped_scopes = 0

    def scope(self, service: str, endpoint: str) -> Scope:
        return (service, endpoint) if self.per_endpoint else ("*", "*")

    # -- learning ---------------------------------------------------------------------
    def observe(
        self, scope: Scope, champion: Any, control: Any, differ: JsonComparator | None = None
    ) -> Set[str]:
        """One champion-vs-control pair; returns the generic paths that differed.

        ``differ``: how this endpoint's control compares (its structural options);
        default: the learner's own.
        """
        state = self._state(scope)
        if state is None:
            return _NOTHING
        if champion == control:
            differing: Set[str] = _NOTHING
        else:
            # the root is never excluded: a free-text answer that always differs is
            # for a text comparator to judge, not noise to switch comparison off
            found = (differ or self._differ).diff(champion, control).paths
            differing = {generic_path(p) for p in found if p != "$"}
        self._dirty.add(scope)
        state.samples += 1
        for path in differing:
            count = state.counts.get(path)
            if count is None:
                if len(state.counts) >= self.max_paths:
                    state.dropped_paths += 1
                    continue
                count = 0.0
            state.counts[path] = count + 1
        if state.samples >= self.window:
            self._decay(state)
        if state.samples >= self.min_samples:
            self._update(state)
        return differing

    def _state(self, scope: Scope) -> _ScopeState | None:
        state = self._scopes.get(scope)
        if state is None:
            if len(self._scopes) >= self.max_scopes:
                self.dropped_scopes += 1
                return None
            state = self._scopes[scope] = _ScopeState()
        return state

    @staticmethod
    def _decay(state: _ScopeState) -> None:
        state.samples /= 2
        state.counts = {p: c / 2 for p, c in state.counts.items() if c >= 1.0}

    def _update(self, state: _ScopeState) -> None:
        enter = self.min_rate * state.samples
        stay = enter / 2
        noisy = frozenset(
            p for p, c in state.counts.items() if c >= enter or (c >= stay and p in state.noisy)
        )
        if noisy != state.noisy:
            state.noisy = noisy

    # -- use ----------------------------------------------------------------------------
    def ready(self, scope: Scope) -> bool:
        """Whether enough control comparisons were seen here for the noisy set to mean much."""
        state = self._scopes.get(scope)
        return state is not None and state.samples >= self.min_samples

    def noisy(self, scope: Scope) -> frozenset[str]:
        """The generic paths currently learned as noisy for this scope."""
        state = self._scopes.get(scope)
        return state.noisy if state is not None else _NOTHING

    def rate(self, scope: Scope, path: str) -> float:
        state = self._scopes.get(scope)
        if state is None or not state.samples:
            return 0.0
        return state.counts.get(path, 0.0) / state.samples

    def snapshot(self) -> dict[str, Any]:
        """For /metrics: per scope, samples seen and the noisy paths with their rates."""
        out: dict[str, Any] = {}
        for (service, endpoint), state in self._scopes.items():
            key = f"{service} {endpoint}".strip() or "-"
            out[key] = {
                "samples": round(state.samples),
                "noisy": {
                    p: round(state.counts.get(p, 0.0) / state.samples, 4)
                    for p in sorted(state.noisy)
                },
                "dropped_paths": state.dropped_paths,
            }
        return out

    # -- persistence --------------------------------------------------------------------
    def drain_dirty(self) -> list[Scope]:
        """The scopes observed since the last call (to be written out)."""
        dirty, self._dirty = sorted(self._dirty), set()
        return dirty

    def export_state(self, scope: Scope) -> dict[str, Any] | None:
        state = self._scopes.get(scope)
        if state is None:
            return None
        return {
            "scope": list(scope),
            "samples": state.samples,
            "counts": dict(state.counts),
            "noisy": sorted(state.noisy),
        }

    def restore_state(self, data: Any) -> bool:
        """Load one exported scope (ignores malformed input); True if loaded."""
        try:
            service, endpoint = (str(v) for v in data["scope"])
            samples = float(data["samples"])
            counts = {str(p): float(c) for p, c in dict(data["counts"]).items()}
            noisy = frozenset(str(p) for p in data["noisy"])
        except (KeyError, TypeError, ValueError):
            return False
        state = self._state((service, endpoint))
        if state is None:
            return False
        state.samples = samples
        state.counts = dict(list(counts.items())[: self.max_paths])
        state.noisy = noisy & frozenset(state.counts)
        if state.samples >= self.min_samples:
            self._update(state)
        return True
