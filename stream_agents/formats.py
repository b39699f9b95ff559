"""Output-format validity: a JSON Schema declared per challenger in config.

Format validity is reported separately from divergence: a challenger can agree
with the champion on content and still break the contract downstream code
relies on (or the champion itself can).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shadowstream.errors import ConfigError


def json_schema_check(schema: dict[str, Any]) -> Callable[[Any], bool]:
    """A fast ``output -> valid?`` predicate for a JSON Schema (validated once)."""
    import jsonschema

    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"invalid output_schema: {exc.message}") from None
    validator = validator_cls(schema)

    def check(output: Any) -> bool:
        return bool(validator.is_valid(output))

    return check
