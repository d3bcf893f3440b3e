"""idle_embedded: the CPU an idle embedded suite burns (`qcity run`, nothing sent to it).

The suite runs as `qcity run` on a fresh temp data dir. Once /readyz answers, the bench lets it
settle, then reads the process's user + system CPU time from /proc/<pid>/stat over a window
(60 s by default, 15 s with --quick, --idle-window S) and reports it as a percentage of one core.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common

NAME = "idle_embedded"
GOAL_PCT = 0.5


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (fields 14 and 15 of /proc/<pid>/stat), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_pct(pid: int, window_s: float) -> float:
    """Percent of one core the process used over `window_s` seconds of wall clock."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(window_s)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    return 100.0 * (c1 - c0) / (t1 - t0)


def run(args: Any) -> list[dict[str, Any]]:
    window = float(args.idle_window or (15 if args.quick else 60))
    settle = 5.0
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-idle-"))
    print(f"[{NAME}] idle `qcity run` for {window:.0f}s after {settle:.0f}s settling, data dir {tmp}", flush=True)
    try:
        port = common.free_port()
        qcity = str(Path(common.PYTHON).with_name("qcity"))
        argv = [qcity, "run", "--data-dir", str(tmp / "data"), "--port", str(port)]
        server = common.Server("idle", argv, port, tmp / "server.log", env={"QC_LOG_LEVEL": "WARNING"})
        with common.servers(server):
            server.wait_ready()
            assert server.proc is not None
            time.sleep(settle)
            with common.py_spy(server.proc.pid, common.spy_path(args, NAME)):
                pct = idle_pct(server.proc.pid, window)
        print(f"[{NAME}] idle suite: {pct:.3f} % of a core over {window:.0f}s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        common.figure(
            NAME,
            "idle embedded suite CPU (qcity run)",
            pct,
            "% of a core",
            goal=f"< {GOAL_PCT} %",
            met=pct < GOAL_PCT,
            window_s=window,
        )
    ]
