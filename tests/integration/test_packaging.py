"""The wheel installs one top-level package, and the SDK imports next to a service's own modules."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path


def test_the_wheel_has_one_top_level_package_and_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {
        name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")
    }
    assert top == {"shadowstream"}
    files = set(names)
    for expected in (
        "shadowstream/schemas/avro/request_event.avsc",
        "shadowstream/sinks/clickhouse/sql/0001_comparisons.sql",
        "shadowstream/analytics/sql/summary.sql",
    ):
        assert expected in files, expected
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() in ([], ["shadowstream"])


def test_the_sdk_imports_beside_a_service_with_its_own_schemas_and_producers(
    tmp_path: Path,
) -> None:
    # the usual service layout: its own schemas.py and producers/ on sys.path first
    (tmp_path / "schemas.py").write_text("SERVICE_SCHEMA = 1\n")
    (tmp_path / "producers").mkdir()
    (tmp_path / "producers" / "__init__.py").write_text("SERVICE_PRODUCER = 1\n")
    (tmp_path / "analytics.py").write_text("SEGMENT = 1\n")
    code = (
        "import schemas, producers, analytics\n"
        "from shadowstream.producers import ShadowEmitter\n"
        "from shadowstream.schemas import REQUEST\n"
        "assert schemas.SERVICE_SCHEMA == 1 and producers.SERVICE_PRODUCER == 1\n"
        "assert analytics.SEGMENT == 1\n"
        "import sys\n"
        "heavy = {'faust', 'clickhouse_connect', 'chdb', 'pydantic'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "print(ShadowEmitter.__module__, REQUEST.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "shadowstream.producers.emitter"
