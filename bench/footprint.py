"""Start-up to ready and idle footprint of `paygrid serve`, the real CLI as `make run` starts it.

The command runs in its own temporary data directory (`PAYGRID_DATA_DIR`) on a free
`PAYGRID_PORT`, with no DATABASE_URL or REDIS_URL, so it starts embedded PostgreSQL and Redis
itself. Measured:

- start-up: from launching the process until `/health` answers 200;
- idle memory: the proportional set size (PSS: shared pages split between the processes that
  map them, so summing never counts a page twice) of every process the instance started,
  sampled after `--idle-s` seconds without traffic;
- stop: SIGINT (what Ctrl-C sends), the time until the command exits, and any process of the
  set still alive a few seconds later (reported, then ended so nothing outlives the bench).

Which processes belong to the instance (`instance_processes`), and why the set is complete:
- the `paygrid serve` process and all its descendants: Redis, Ray's GCS, raylet, monitor,
  log monitor and dashboard (started by the driver), Ray's agents and workers — Serve's
  controller, proxy, HAProxy manager, the API replicas, ledger shards, dispatchers, schedulers —
  (started by the raylet), and HAProxy (run in the foreground under its manager actor);
- PostgreSQL is not a descendant: `pg_ctl` daemonizes the postmaster, which is reparented to
  init. It is found by its command line, which names the instance's data directory (`-D`), and
  its backends and auxiliary processes are its children;
- to catch anything else that leaves the tree, any process whose command line names the data
  directory, the Ray session directory, or the instance's HAProxy run directory is a root too,
  with its descendants.
Processes started meanwhile that match none of these are listed as not counted, so an
incomplete set would show up there (on a shared box they are other people's work).

    python -m bench.footprint [--idle-s 5] [--timeout-s 180]

Targets from the issue, printed beside the numbers: start-up <= 15 s on two cores, idle PSS
<= 1.5 GiB.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench import report
from bench.stack import save
from engine.runtime import local

STARTUP_TARGET_S = 15.0
PSS_TARGET_BYTES = int(1.5 * 2**30)
_SESSION = re.compile(r"/\S*?/session_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_\d+_\d+")
_HAPROXY_RUN_DIR = "RAY_SERVE_HAPROXY_SERVER_STATE_BASE"


@dataclass(frozen=True)
class Member:
    pid: int
    name: str
    group: str
    pss: int


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _markers(root: psutil.Process, data_dir: Path) -> set[str]:
    """Strings naming this instance in a command line: its data directory, its Ray session
    directory (from the Ray processes' arguments) and HAProxy's run directory (from the
    environment Serve's workers inherited)."""
    markers = {str(data_dir)}
    for proc in root.children(recursive=True):
        markers.update(_SESSION.findall(_cmdline(proc)))
        if proc.name() == "raylet":
            try:
                run_dir = proc.environ().get(_HAPROXY_RUN_DIR)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                run_dir = None
            if run_dir:
                markers.add(run_dir)
    return markers


def instance_processes(root: psutil.Process, data_dir: Path) -> list[psutil.Process]:
    """Every process of the instance started by `root` (see the module docstring)."""
    markers = _markers(root, data_dir)
    roots = [root] + [
        proc
        for proc in psutil.process_iter()
        if proc.pid != root.pid and any(m in _cmdline(proc) for m in markers)
    ]
    found: dict[int, psutil.Process] = {}
    for proc in roots:
        try:
            family = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        found.update((p.pid, p) for p in family)
    return sorted(found.values(), key=lambda p: p.pid)


def _group(proc: psutil.Process, root: psutil.Process) -> str:
    name = proc.name()
    if proc.pid == root.pid:
        return "paygrid serve (Ray driver)"
    if name == "postgres":
        return "PostgreSQL"
    if name.startswith("ray::ServeReplica"):
        return "API replicas"
    if name.startswith("ray::"):
        return name.removeprefix("ray::")
    if name in ("gcs_server", "raylet"):
        return "Ray GCS and raylet"
    if name in ("redis-server", "haproxy"):
        return {"redis-server": "Redis", "haproxy": "HAProxy"}[name]
    return "Ray monitor, log monitor, dashboard"


def measure_members(procs: Iterable[psutil.Process], root: psutil.Process) -> list[Member]:
    members = []
    for proc in procs:
        try:
            members.append(
                Member(proc.pid, proc.name(), _group(proc, root), proc.memory_full_info().pss)
            )
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return members


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Seconds from now until `url` answers 200; fails if the command exits first."""
    started = time.monotonic()
    with httpx.Client(timeout=2) as client:
        while time.monotonic() - started < timeout_s:
            if process.poll() is not None:
                raise RuntimeError(f"paygrid serve exited with {process.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s")


def _not_counted(since: float, counted: set[int], own: set[int]) -> list[str]:
    """Processes started after `since` that are outside the set and not this bench's own."""
    names = []
    for proc in psutil.process_iter(["name", "create_time"]):
        if proc.info["create_time"] >= since and proc.pid not in counted | own:
            names.append(f"{proc.info['name']} ({proc.pid})")
    return names


def _stop(
    process: subprocess.Popen[bytes], members: list[psutil.Process], timeout_s: float
) -> tuple[float, list[str]]:
    """SIGINT, wait for the command, then for the rest of the set; the stop time and what was
    left over (ended here, by pid, after being reported)."""
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    stopped_s = time.monotonic() - started
    _, alive = psutil.wait_procs(members, timeout=5)
    leftovers = [f"{p.pid} {p.name()} {_cmdline(p)[:120]}" for p in alive if p.is_running()]
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    return stopped_s, leftovers


def run(idle_s: float, timeout_s: float) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="paygrid-footprint-"))
    data_dir = workdir / "data"
    port = local.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "PAYGRID_DATA_DIR": str(data_dir),
        "PAYGRID_PORT": str(port),
        "PAYGRID_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    command = [str(Path(sys.executable).parent / "paygrid"), "serve"]
    launched = time.time()
    procs: list[psutil.Process] = []
    with (workdir / "serve.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own console script, no shell
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            startup_s = wait_healthy(f"http://127.0.0.1:{port}/health", process, timeout_s)
            time.sleep(idle_s)  # the point: sample after a quiet spell
            root = psutil.Process(process.pid)
            procs = instance_processes(root, data_dir)
            members = measure_members(procs, root)
            own = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
            outside = _not_counted(launched, {m.pid for m in members}, own)
        finally:
            # Also on failure: the instance is stopped, and nothing it started outlives us.
            if not procs and process.poll() is None:
                procs = instance_processes(psutil.Process(process.pid), data_dir)
            stop_s, leftovers = _stop(process, procs, 60)
            local.remove_data(workdir)
    return _report(startup_s, idle_s, members, stop_s, leftovers, outside)


def _report(
    startup_s: float,
    idle_s: float,
    members: list[Member],
    stop_s: float,
    leftovers: list[str],
    outside: list[str],
) -> str:
    total = sum(m.pss for m in members)
    rows = [
        [
            "start-up to /health 200",
            f"{startup_s:.1f} s",
            f"<= {STARTUP_TARGET_S:.0f} s on two cores",
            "yes" if startup_s <= STARTUP_TARGET_S else "no",
        ],
        [
            f"idle PSS, all {len(members)} processes",
            f"{total / 2**30:.2f} GiB",
            f"<= {PSS_TARGET_BYTES / 2**30:.1f} GiB",
            "yes" if total <= PSS_TARGET_BYTES else "no",
        ],
        ["stop after SIGINT", f"{stop_s:.1f} s", "-", "-"],
        ["processes left after stop", str(len(leftovers)), "0", "yes" if not leftovers else "no"],
    ]
    by_group: dict[str, list[Member]] = {}
    for member in members:
        by_group.setdefault(member.group, []).append(member)
    breakdown = sorted(by_group.items(), key=lambda item: -sum(m.pss for m in item[1]))
    listed = report.facts(
        {
            "command": "paygrid serve (as make run), embedded PostgreSQL and Redis, own data dir",
            "idle": f"sampled {idle_s:g} s after /health first answered 200, no traffic",
            "left after stop": "; ".join(leftovers) or "none",
            "not counted (started meanwhile, not the instance's)": ", ".join(outside) or "none",
        }
    )
    parts = [
        [group, str(len(ms)), f"{sum(m.pss for m in ms) / 2**20:,.0f}"] for group, ms in breakdown
    ]
    return "\n\n".join(
        [
            report.markdown(
                "Start-up and idle footprint", listed, ["measure", "value", "target", "met"], rows
            ),
            "Idle PSS by part:",
            report.table(["part", "processes", "PSS MiB"], parts),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--idle-s", type=float, default=5.0, help="quiet spell before sampling")
    parser.add_argument("--timeout-s", type=float, default=180.0, help="longest start-up")
    args = parser.parse_args()
    save("footprint", run(args.idle_s, args.timeout_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
