"""Shadowstream: shadow testing (champion/challenger) for ML and LLM services.

Everything lives under this one namespace; the sub-packages are the stages::

    shadowstream.producers      the SDK a service emits events with (light: no Faust, no ClickHouse)
    shadowstream.schemas        the Avro event contracts and their codec
    shadowstream.stream_agents  router (fan-out + join) and challenger workers
    shadowstream.sinks          ClickHouse sink
    shadowstream.analytics      reports, slices, promotion gate
    shadowstream.experiments    async batch experiments
    shadowstream.cli            the ``shadow`` command

The layers and the direction of their imports are declared in pyproject.toml
(import-linter) and checked by ``./dev lint``.
"""

__version__ = "0.1.0"
