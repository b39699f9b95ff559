"""Shadowstream core: what every stage shares (errors, settings, Kafka plumbing).

Dependency direction, bottom to top::

    shadowstream  <-  schemas  <-  producers | stream_agents | sinks  <-  analytics  <-  shadow_cli

Nothing in this package imports Faust, ClickHouse or chDB, so the producer SDK
stays light.
"""

__version__ = "0.1.0"
