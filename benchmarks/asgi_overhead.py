"""What ShadowMiddleware adds to a request, measured with a real server and client.

Two uvicorn processes serve the same FastAPI app (benchmarks/asgi_app.py), one
without and one with ShadowMiddleware on the classify route; the emitters
deliver to the embedded broker. One httpx client (keep-alive, sequential)
interleaves requests: plain server, middleware server, and the plain server's
@emitter.shadowed route (the SDK's own cost), so load drift hits all three
alike. Latency is client-side, request sent -> response read.

    ./dev bench asgi_overhead.py --requests 3000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from benchmarks.common import machine, quantile
from shadowstream.core.config import load_settings
from shadowstream.pipeline.app import create_topics
from shadowstream.pipeline.embedded import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parents[1]
BODY = {
    "text": "where is my refund for order 12345, it was due last week",
    "lang": "en",
    "customer": 42,
}


def serve(broker_url: str, prefix: str, middleware: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_BROKER": broker_url,
        "BENCH_PREFIX": prefix,
        "BENCH_MIDDLEWARE": "1" if middleware else "0",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks.asgi_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/stats", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("uvicorn did not start")


def run(client: httpx.Client, targets: dict[str, str], n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {label: [] for label in targets}
    content = json.dumps(BODY).encode()
    headers = {"content-type": "application/json", "x-tier": "pro"}
    for i in range(n):
        for label, url in targets.items():
            started = time.perf_counter()
            response = client.post(url.format(i=i), content=content, headers=headers)
            response.read()
            samples[label].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per target")
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    print(f"ASGI middleware overhead - {machine()}; {args.requests:,} requests per row, ms")
    with EmbeddedBroker() as broker:
        settings = load_settings(
            None, broker_url=broker.url, topic_prefix="asgibench", partitions=2
        )
        create_topics(settings)
        plain, plain_url = serve(broker.url, "asgibench", middleware=False)
        shadowed, shadowed_url = serve(broker.url, "asgibench", middleware=True)
        try:
            targets = {
                "no middleware (baseline)": plain_url + "/v1/tickets/{i}/classify",
                "ShadowMiddleware": shadowed_url + "/v1/tickets/{i}/classify",
                "@emitter.shadowed (the SDK)": plain_url + "/v1/tickets/{i}/decorated",
            }
            with httpx.Client(timeout=30) as client:
                run(client, targets, args.warmup)
                samples = run(client, targets, args.requests)
                stats = {
                    name: client.get(f"{url}/stats").json()
                    for name, url in (("plain", plain_url), ("middleware", shadowed_url))
                }
        finally:
            for proc in (plain, shadowed):
                proc.terminate()
                proc.wait(10)
    base = samples["no middleware (baseline)"]
    print(f"\n{'':30}{'p50':>8}{'p99':>8}{'+p50':>8}{'+p99':>8}")
    for label, values in samples.items():
        p50, p99 = quantile(values, 0.5), quantile(values, 0.99)
        extra = (
            ""
            if values is base
            else (f"{p50 - quantile(base, 0.5):>+8.3f}{p99 - quantile(base, 0.99):>+8.3f}")
        )
        print(f"{label:30}{p50:>8.3f}{p99:>8.3f}{extra}")
    mw: Any = stats["middleware"]
    print(f"\nmiddleware server: {mw['middleware']}")
    print(f"  emitter: {mw['emitter']}")
    print(f"plain server (decorated route): {stats['plain']['emitter']}")


if __name__ == "__main__":
    main()
