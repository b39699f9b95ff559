"""Exit codes of the ``shadow`` command: verdicts and errors never share a code.

A CI job can branch on them: 0/1/2 are answers (``shadow gate`` and ``shadow
watch`` verdicts; 0 is also plain success for every other command), 3 and up
are reasons there is no answer.
"""

from __future__ import annotations

# the verdicts: the same as shadowstream.analytics.gate.EXIT_CODES (imported lazily there)
PROMOTE = 0  # promote (or success)
FAIL = 1  # a challenger fails the gate
NOT_ENOUGH_DATA = 2  # no verdict yet: wait for more data
USAGE = 3  # bad option, missing or invalid config, a name that matches nothing
STORE_UNAVAILABLE = 4  # ClickHouse cannot be reached (or its chDB directory is locked)
ERROR = 5  # any other error (a query failed, the broker refused, an agent crashed)
INTERRUPTED = 130  # Ctrl-C

HELP = (
    "Exit codes: 0 promote (or success), 1 FAIL, 2 not enough data yet, "
    "3 usage or config error (also an --experiment/--challenger that matches nothing), "
    "4 ClickHouse unreachable, 5 other error, 130 interrupted."
)
