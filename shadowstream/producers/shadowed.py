"""``@emitter.shadowed(endpoint)``: every call of a function is a captured champion call."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from shadowstream.producers.capture import ChampionCall
from shadowstream.producers.jsonable import call_payload, call_shape, response_output

if TYPE_CHECKING:
    from shadowstream.producers.emitter import ShadowEmitter

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CallExtractors:
    """What the decorator records of a call; None: the default (see ShadowEmitter.shadowed)."""

    payload: Callable[..., Any] | None = None
    attributes: Callable[..., Mapping[str, str]] | None = None
    usage: Callable[[Any], Mapping[str, Any]] | None = None
    output: Callable[[Any], Any] | None = None


def shadow_function(emitter: ShadowEmitter, endpoint: str, extractors: CallExtractors, fn: F) -> F:
    """``fn`` wrapped so that each call is captured; a failing extractor loses that field,
    never the call."""
    shape = call_shape(fn)
    payload, attributes = extractors.payload, extractors.attributes

    def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ChampionCall:
        try:
            body = payload(*args, **kwargs) if payload else call_payload(shape, args, kwargs)
        except Exception:
            body = None
        try:
            attrs = attributes(*args, **kwargs) if attributes else None
        except Exception:
            attrs = None
        return emitter.capture(endpoint, body, attributes=attrs)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with prepare(args, kwargs) as call:
                result = await fn(*args, **kwargs)
                _record(extractors, call, result)
            return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with prepare(args, kwargs) as call:
            result = fn(*args, **kwargs)
            _record(extractors, call, result)
        return result

    return wrapper  # type: ignore[return-value]


def _record(extractors: CallExtractors, call: ChampionCall, result: Any) -> None:
    output, usage = extractors.output, extractors.usage
    try:
        call.output = output(result) if output else response_output(result)
    except Exception:
        call.output = None
    if usage is not None:
        with contextlib.suppress(Exception):
            call.usage(**dict(usage(result)))
