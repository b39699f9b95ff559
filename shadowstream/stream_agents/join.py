"""The windowed champion/challenger join, as pure logic (no Kafka, no Faust).

One :class:`JoinEngine` holds the state of one partition number (the same
partition of the requests, batch-requests and responses topics). Semantics:

* Either side may arrive first. A comparison is emitted per (request,
  challenger) as soon as the request, the champion and that challenger are
  all present, so a slow challenger never delays another one's comparison.
* The router records which challengers a request was sent to (``asked``), so
  "not sampled" is never confused with "missing".
* The window is wall-clock (monotonic) time since the request's first event was
  seen here. On expiry every asked challenger without a comparison yet is
  emitted as ``challenger_missing``, ``champion_missing`` or ``both_missing``.
* A closed request leaves a *marker* (asked sides, received sides) for
  ``late_retention_s``: a duplicate is dropped; a side that arrives after the
  close is emitted once as ``late``, never joined twice.
* State is bounded: entries leave when closed or expired; expiry walks only the
  expired prefix of an insertion-ordered dict; markers live in rotating
  generations that are dropped whole.

Offsets: every event an open entry holds is tracked per source, so the router
can commit, per source partition, only below the oldest event still held
(``commit_offset``). Closed requests are persisted as markers in a changelog
before offsets move past them, which is what makes a restart exact.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shadowstream.schemas.records import ComparisonEvent, Outcome, RequestEvent, ResponseEvent
from shadowstream.schemas.wire import Marker

CHAMPION = "@champion"  # the champion's side name; challenger names cannot start with '@'
_NO_SIDES: frozenset[str] = frozenset()

Comparison = ComparisonEvent
# What the builder makes of a joined pair: a ComparisonEvent record, or whatever the
# caller wants the engine to hand back (the router: the encoded event, or why not)
C = TypeVar("C")
# build(request, champion, challenger_response, challenger_name, outcome) -> C
ComparisonBuilder = Callable[
    [RequestEvent | None, ResponseEvent | None, ResponseEvent | None, str, Outcome], C
]
# route(request) -> names of the challengers the request was sent to
Router = Callable[[RequestEvent], Sequence[str]]
# dispatch(request, champion, names): send the request to challengers that replay the
# champion's tool calls, once the champion's answer (with its tool trace) is known
Dispatcher = Callable[[RequestEvent, ResponseEvent, tuple[str, ...]], None]


@dataclass(slots=True)
class Entry:
    """An open request: what has arrived so far."""

    request_id: str
    first_seen: float
    request: RequestEvent | None = None
    asked: tuple[str, ...] | None = None
    champion: ResponseEvent | None = None
    challengers: dict[str, ResponseEvent] = field(default_factory=dict)
    emitted: set[str] | frozenset[str] = field(default_factory=set)
    skipped: set[str] | frozenset[str] = field(default_factory=set)
    awaiting_champion: tuple[str, ...] = ()
    closed: bool = False


@dataclass
class JoinStats:
    requests: int = 0
    responses: int = 0
    comparisons: int = 0
    duplicates: int = 0
    late: int = 0
    orphans: int = 0
    unsolicited: int = 0
    skipped_sides: int = 0
    expired_entries: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class _MarkerStore:
    """Markers in rotating generations: O(1) insert/lookup, expiry drops a whole dict.

    A marker lives between ``retention`` and ``retention * (1 + 1/(generations-1))``.
    """

    def __init__(self, retention_s: float, generations: int = 3) -> None:
        self.retention_s = retention_s
        self._span = max(retention_s / max(generations - 1, 1), 0.001)
        self._gens: deque[tuple[float, dict[str, Marker]]] = deque()
        self._generations = generations

    def get(self, request_id: str) -> Marker | None:
        for _, gen in reversed(self._gens):
            marker = gen.get(request_id)
            if marker is not None:
                return marker
        return None

    def put(self, request_id: str, marker: Marker) -> None:
        if self.retention_s <= 0:
            return
        if not self._gens or marker.closed_at >= self._gens[-1][0] + self._span:
            self._gens.append((marker.closed_at, {}))
        self._gens[-1][1][request_id] = marker

    def update(self, request_id: str, marker: Marker) -> None:
        for _, gen in reversed(self._gens):
            if request_id in gen:
                gen[request_id] = marker
                return
        self.put(request_id, marker)

    def expire(self, now_wall: float) -> int:
        dropped = 0
        # a generation can go once its *newest* possible marker is past retention
        while len(self._gens) > 1 and self._gens[1][0] + self.retention_s <= now_wall:
            dropped += len(self._gens.popleft()[1])
        return dropped

    def __len__(self) -> int:
        return sum(len(g) for _, g in self._gens)


class JoinEngine(Generic[C]):
    """Join state for one partition number."""

    def __init__(
        self,
        *,
        window_s: float,
        late_retention_s: float,
        build: ComparisonBuilder[C],
        sources: int = 3,
        replay: frozenset[str] = frozenset(),
        dispatch: Dispatcher | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s = window_s
        self._build = build
        self._replay = replay
        self._dispatch = dispatch
        self._clock = clock
        self._wall = wall_clock
        self._open: dict[str, Entry] = {}
        self._markers = _MarkerStore(late_retention_s)
        self._new_markers: list[tuple[str, Marker]] = []
        self._sides: dict[frozenset[str], frozenset[str]] = {}
        # per source: (offset, entry) for every event an entry holds, in offset order
        self._held: list[deque[tuple[int, Entry]]] = [deque() for _ in range(sources)]
        self.stats = JoinStats()

    # -- input ------------------------------------------------------------------
    def add_request(
        self, request: RequestEvent, route: Router, source: int = 0, offset: int = -1
    ) -> list[C]:
        """A request event. ``route`` is called once per new request to fan it out."""
        self.stats.requests += 1
        rid: str = request["request_id"]
        entry = self._open.get(rid)
        if entry is None:
            if self._markers.get(rid) is not None:
                self.stats.duplicates += 1
                return []
            entry = Entry(rid, self._clock())
            self._open[rid] = entry
        elif entry.request is not None:
            self.stats.duplicates += 1
            return []
        entry.request = request
        asked = tuple(route(request))
        # a response that proves a challenger was asked (e.g. before a restart)
        for name in entry.challengers:
            if name not in asked:
                asked += (name,)
        entry.asked = asked
        if offset >= 0:
            self._held[source].append((offset, entry))
        if self._replay:
            deferred = tuple(n for n in asked if n in self._replay and n not in entry.challengers)
            if deferred:
                entry.awaiting_champion = deferred
                self._maybe_dispatch(entry)
        out: list[C] = []
        for name in asked:
            self._try_emit(entry, name, out)
        self._maybe_close(entry)
        return out

    def add_response(self, response: ResponseEvent, source: int = 2, offset: int = -1) -> list[C]:
        """A champion or challenger response event."""
        self.stats.responses += 1
        rid: str = response["request_id"]
        side = CHAMPION if response["role"] == "champion" else response["challenger"]
        entry = self._open.get(rid)
        if entry is None:
            marker = self._markers.get(rid)
            if marker is not None:
                return self._after_close(rid, marker, side, response)
            entry = Entry(rid, self._clock())
            self._open[rid] = entry
        out: list[C] = []
        if side == CHAMPION:
            if entry.champion is not None:
                self.stats.duplicates += 1
                return out
            entry.champion = response
            if offset >= 0:
                self._held[source].append((offset, entry))
            if entry.awaiting_champion:
                self._maybe_dispatch(entry)
            if entry.asked is not None:
                for name in entry.asked:
                    self._try_emit(entry, name, out)
        else:
            if side in entry.challengers or side in entry.skipped:
                self.stats.duplicates += 1
                return out
            if entry.asked is not None and side not in entry.asked:
                self.stats.unsolicited += 1
                return out
            if response["status"] == "skipped":
                self.stats.skipped_sides += 1
                entry.skipped.add(side)  # type: ignore[union-attr]
                entry.emitted.add(side)  # type: ignore[union-attr]
            else:
                entry.challengers[side] = response
                if offset >= 0:
                    self._held[source].append((offset, entry))
                if entry.asked is not None:
                    self._try_emit(entry, side, out)
        self._maybe_close(entry)
        return out

    def _maybe_dispatch(self, entry: Entry) -> None:
        """Send record-replay challengers their request once the champion's answer is in."""
        if entry.request is None or entry.champion is None or self._dispatch is None:
            return
        names, entry.awaiting_champion = entry.awaiting_champion, ()
        self._dispatch(entry.request, entry.champion, names)

    def _try_emit(self, entry: Entry, name: str, out: list[C]) -> None:
        if name in entry.emitted or entry.champion is None or entry.request is None:
            return
        challenger = entry.challengers.get(name)
        if challenger is None:
            return
        status = challenger["status"]
        outcome: Outcome = "challenger_missing" if status == "timeout" else "both_answered"
        out.append(self._build(entry.request, entry.champion, challenger, name, outcome))
        entry.emitted.add(name)  # type: ignore[union-attr]
        self.stats.comparisons += 1

    def _maybe_close(self, entry: Entry) -> None:
        if entry.asked is None or entry.request is None:
            return
        if len(entry.emitted) < len(entry.asked):
            return
        if entry.asked and entry.champion is None:
            return  # everything skipped but champion still due: keep for its marker
        self._close(entry)

    def _close(self, entry: Entry) -> None:
        entry.closed = True
        del self._open[entry.request_id]
        received = set(entry.challengers) | entry.skipped
        if entry.champion is not None:
            received.add(CHAMPION)
        marker = Marker(
            closed_at=self._wall(),
            asked=self._intern(frozenset(entry.asked or ())),
            received=self._intern(frozenset(received)),
        )
        self._markers.put(entry.request_id, marker)
        self._new_markers.append((entry.request_id, marker))
        # drop payloads now; the held-offset deques may still reference the shell
        entry.request = entry.champion = None
        entry.challengers = {}
        entry.emitted = entry.skipped = _NO_SIDES

    def _intern(self, sides: frozenset[str]) -> frozenset[str]:
        """Markers share their side sets: a handful of distinct ones per pipeline."""
        shared = self._sides.get(sides)
        if shared is None:
            if len(self._sides) > 10_000:
                self._sides.clear()
            shared = self._sides[sides] = sides
        return shared

    def _after_close(self, rid: str, marker: Marker, side: str, response: ResponseEvent) -> list[C]:
        if side in marker.received:
            self.stats.duplicates += 1
            return []
        if side != CHAMPION and side not in marker.asked:
            self.stats.unsolicited += 1
            return []
        if side == CHAMPION and not marker.asked:
            return []  # nobody was asked: the champion's answer has nothing to join
        updated = Marker(marker.closed_at, marker.asked, marker.received | {side})
        self._markers.update(rid, updated)
        self._new_markers.append((rid, updated))
        if response["status"] == "skipped":
            return []
        self.stats.late += 1
        out: list[C] = []
        if side == CHAMPION:
            for name in sorted(marker.asked):
                out.append(self._build(None, response, None, name, "late"))
        else:
            out.append(self._build(None, None, response, side, "late"))
        self.stats.comparisons += len(out)
        return out

    # -- time -----------------------------------------------------------------------
    def expire(self) -> list[C]:
        """Close every entry whose window has passed; walks only the expired prefix."""
        cutoff = self._clock() - self.window_s
        expired: list[Entry] = []
        for entry in self._open.values():
            if entry.first_seen > cutoff:
                break
            expired.append(entry)
        out: list[C] = []
        for entry in expired:
            self.stats.expired_entries += 1
            if entry.request is None:
                # responses whose request never arrived: nothing to fan out or compare
                self.stats.orphans += 1
                entry.asked = tuple(entry.challengers)
                self._close(entry)
                continue
            for name in entry.asked or ():
                if name in entry.emitted:
                    continue
                challenger = entry.challengers.get(name)
                outcome: Outcome
                if entry.champion is None:
                    outcome = "both_missing" if challenger is None else "champion_missing"
                else:
                    outcome = "challenger_missing"
                out.append(self._build(entry.request, entry.champion, challenger, name, outcome))
                entry.emitted.add(name)  # type: ignore[union-attr]
                self.stats.comparisons += 1
            self._close(entry)
        self._markers.expire(self._wall())
        return out

    # -- durability -------------------------------------------------------------------
    def drain_markers(self) -> list[tuple[str, Marker]]:
        """Markers created or updated since the last call (to write to the changelog)."""
        markers, self._new_markers = self._new_markers, []
        return markers

    def restore_markers(self, markers: Iterable[tuple[str, Marker]]) -> int:
        """Load markers read back from the changelog (oldest first); returns how many kept."""
        now = self._wall()
        kept = 0
        for rid, marker in markers:
            if marker.closed_at + self._markers.retention_s <= now:
                continue
            self._markers.update(rid, marker)
            kept += 1
        return kept

    def commit_offset(self, source: int, next_offset: int) -> int:
        """Offset safe to commit on ``source``: below the oldest event still held.

        ``next_offset`` is one past the last offset consumed from that source.
        """
        held = self._held[source]
        while held and held[0][1].closed:
            held.popleft()
        return held[0][0] if held else next_offset

    # -- introspection -------------------------------------------------------------------
    @property
    def open_entries(self) -> int:
        return len(self._open)

    @property
    def markers(self) -> int:
        return len(self._markers)

    def held_events(self) -> int:
        return sum(len(h) for h in self._held)
