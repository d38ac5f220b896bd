"""The Authorize.Net rows' gateway: the local fake of Authorize.Net's JSON API
(`tests/engine/gateways/authorizenet_fake.py`) as its own process on 127.0.0.1, answering
after the row's latency, and the `PAYGRID_AUTHORIZENET_*` variables that point paygrid's
adapter at it. Stopped on the way out."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.engine.gateways.authorizenet_fake import FakeAuthorizeNet

# Connections one process keeps to the gateway: at c=256 and 300 ms the adapter's default
# (100) would cap a shard at 100 / 0.3 s = 333 req/s, a bound of the setting, not the adapter.
CONNECTIONS = 512


@contextmanager
def running(latency_ms: int) -> Iterator[dict[str, str]]:
    """The fake, answering after `latency_ms`; yields the environment that points the
    adapter at it (to be set before Ray starts, so every actor inherits it)."""
    process = subprocess.Popen(  # noqa: S603 - our own module, no shell
        [
            sys.executable,
            "-m",
            "tests.engine.gateways.authorizenet_fake",
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError("the fake Authorize.Net server did not start")
        fake = FakeAuthorizeNet()
        yield {
            "PAYGRID_AUTHORIZENET_API_LOGIN_ID": fake.api_login_id,
            "PAYGRID_AUTHORIZENET_TRANSACTION_KEY": fake.transaction_key,
            "PAYGRID_AUTHORIZENET_ENDPOINT_URL": url,
            "PAYGRID_AUTHORIZENET_CONNECTIONS": str(CONNECTIONS),
        }
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
