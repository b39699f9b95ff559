"""Output-format validity: a JSON Schema declared per challenger in config.

Format validity is reported separately from divergence: a challenger can agree
with the champion on content and still break the contract downstream code
relies on (or the champion itself can). The comparison carries
``champion_format_valid`` / ``challenger_format_valid``, and its summary says
what was wrong (the first schema error).

An output that is not JSON arrives as a string, so ``{"type": "object"}``
already rejects a malformed answer.
"""

from __future__ import annotations

from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import clip


class SchemaCheck:
    """``check(output) -> valid?``, plus ``explain(output)`` for the first error."""

    def __init__(self, schema: dict[str, Any]) -> None:
        import jsonschema

        try:
            validator_cls = jsonschema.validators.validator_for(schema)
            validator_cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"invalid output_schema: {exc.message}") from None
        self.schema = schema
        self._validator = validator_cls(schema)

    def __call__(self, output: Any) -> bool:
        return bool(self._validator.is_valid(output))

    def explain(self, output: Any) -> str | None:
        """The first validation error, short (None when the output is valid)."""
        error = next(iter(self._validator.iter_errors(output)), None)
        if error is None:
            return None
        where = error.json_path if error.absolute_path else "$"
        return clip(f"{where}: {error.message}", 160)


def json_schema_check(schema: dict[str, Any]) -> SchemaCheck:
    """A fast ``output -> valid?`` predicate for a JSON Schema (validated once)."""
    return SchemaCheck(schema)
