"""Generating a codec function: lines of Python, their constants, compiled once."""

from __future__ import annotations

from typing import Any


class CodeGen:
    """The lines of one generated function and the constants they refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.counter = 0

    def var(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any, prefix: str = "_k") -> str:
        name = self.var(prefix)
        self.consts[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def compile(self, name: str, helpers: dict[str, Any]) -> Any:
        """The function ``name`` the lines define, with ``helpers`` and the constants in scope."""
        namespace: dict[str, Any] = {**helpers, **self.consts}
        exec("\n".join(self.lines), namespace)
        return namespace[name]
