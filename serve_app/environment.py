"""Environment for Ray Serve, set before `ray.serve` is first imported (it reads it then)."""

from __future__ import annotations

import hashlib
import socket
import tempfile
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fast_ingress_environment(run_dir: Path) -> dict[str, str]:
    """Serve's throughput-optimized mode: each replica serves HTTP itself behind the HAProxy that
    ships with ray[serve] (no Python proxy hop), user code on the replica's own event loop, and
    workers at normal priority so they are not starved by a co-located database. HAProxy's files
    live in this instance's run directory, so two instances never share them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(run_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(run_dir / "haproxy.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(run_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(run_dir / "haproxy-state"),
        "RAY_worker_niceness": "0",
        # One HAProxy thread: on a small box more threads only contend with the replicas.
        "RAY_SERVE_HAPROXY_NBTHREAD": "1",
        # HAProxy's stats and Prometheus listeners are hard-wired to all interfaces; give each
        # instance its own ports so two instances never collide.
        "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
        # HAProxy's own Prometheus gauges cost a sampling thread per node; paygrid reports what
        # operators need through its own endpoints.
        "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
        # Replicas drain for 30 s by default before stopping; a local stop should be quick.
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    }


def apply(settings_data_dir: str, *, fast_ingress: bool) -> None:
    """Set Serve's environment for this process and the Ray it starts. Call before anything
    imports `ray.serve`."""
    import os

    if fast_ingress:
        # HAProxy's admin socket path must stay under 97 bytes and Serve nests it two levels
        # deep, so the run directory is a short one in /tmp, named after the data directory.
        digest = hashlib.sha256(str(Path(settings_data_dir).resolve()).encode()).hexdigest()[:10]
        run_dir = Path(tempfile.gettempdir()) / f"paygrid-{digest}"
        os.environ.update(fast_ingress_environment(run_dir))
