"""schemathesis (every check) against the embedded suite: the served document and the server agree.

Run with a token holding every scope and without one, a bounded number of examples per operation so
it fits in CI. The few expected statuses it is told about, each with its reason, are in
schemathesis.toml beside this file. The seed is fixed so CI is reproducible; set
QC_SCHEMATHESIS_SEED to explore others.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.conftest import Served

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 5


def run_schemathesis(served: Served, workdir: Path, *headers: str) -> str:
    seed = os.environ.get("QC_SCHEMATHESIS_SEED", "20261201")
    args = [str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", served.url + "/openapi.json"]
    args += ["--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", seed, "--workers", "1"]
    # The PDF report renders with WeasyPrint in a second or two; a loaded CI machine has taken more
    # than schemathesis's default 10 s (a timeout is reported as a failure, not a slow answer).
    args += ["--request-timeout", "60"]
    for header in headers:
        args += ["-H", header]
    env = {**os.environ, "NO_COLOR": "1"}
    # Its cache of crashes goes to the working folder: a temporary one, never the repository.
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=workdir)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out.split("SUMMARY")[-1] + "\n" + out[:6000]
    return out


def _counts(out: str) -> tuple[int, int]:
    tested = re.search(r"Tested: (\d+)", out)
    cases = re.search(r"(\d+) generated", out)
    assert tested and cases, out[-3000:]
    return int(tested.group(1)), int(cases.group(1))


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_schemathesis_finds_no_failure(served: Served, with_token: bool, tmp_path: Path) -> None:
    headers = [f"Authorization: Bearer {served.token()}"] if with_token else []
    out = run_schemathesis(served, tmp_path, *headers)
    operations, cases = _counts(out)
    print(f"schemathesis ({'token' if with_token else 'no token'}): {operations} operations, {cases} cases")
    assert operations >= 60 and cases >= operations * 2
