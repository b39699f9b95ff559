"""What every stage shares: the root exception, settings, topic names, Kafka admin.

Imports nothing else from shadowstream; the producer SDK uses only ``errors``
and ``topics`` (no pydantic needed for those).
"""
