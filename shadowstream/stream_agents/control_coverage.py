"""Where a control is on its way: which comparisons should wait for the noise model.

An endpoint's noise model is learned from the control challengers that reach
it. A comparison on an endpoint no control covers (its ``endpoints`` globs,
within ``shadow_endpoints`` and outside ``write_endpoints``), or in a batch run
that asked no control, has no model to wait for: it is judged at once. The
others are provisional until the model is ready (stream_agents.comparison).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shadowstream.core.endpoints import endpoint_matches
from shadowstream.stream_agents.noise import Scope

ExperimentLookup = Callable[[str], tuple[str, ...] | None]
_MAX_CACHED = 10_000


def unknown_experiment(experiment: str) -> tuple[str, ...] | None:
    return None


class ControlCoverage:
    def __init__(
        self,
        control_endpoints: Mapping[str, tuple[str, ...]],
        shadow_endpoints: tuple[str, ...] = ("*",),
        write_endpoints: tuple[str, ...] = (),
    ) -> None:
        self.control_endpoints = dict(control_endpoints)
        self.shadow_endpoints = shadow_endpoints
        self.write_endpoints = write_endpoints
        # batch experiment -> its challengers (the router's registry)
        self.experiment_challengers: ExperimentLookup = unknown_experiment
        self._covered: dict[Scope, bool] = {}

    def covers(self, scope: Scope) -> bool:
        """Whether some control reaches this (service, endpoint) scope."""
        covered = self._covered.get(scope)
        if covered is None:
            endpoint = scope[1]
            covered = scope == ("*", "*") or (
                endpoint_matches(endpoint, self.shadow_endpoints)
                and not endpoint_matches(endpoint, self.write_endpoints)
                and any(endpoint_matches(endpoint, p) for p in self.control_endpoints.values())
            )
            if len(self._covered) < _MAX_CACHED:
                self._covered[scope] = covered
        return covered

    def control_coming(self, scope: Scope, experiment: str) -> bool:
        """A control will teach this scope: live traffic it covers, or a batch run that
        asked one."""
        if not self.covers(scope):
            return False
        if experiment == "live":
            return True
        asked = self.experiment_challengers(experiment) or ()
        return any(name in self.control_endpoints for name in asked)
