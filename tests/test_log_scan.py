"""After the whole run (issue 11): no log file of any process holds a card number, a CVC, an
API key or a webhook secret, nor a bank account number or wallet token of the tests. Every
Ray process of the session logs into the session's folder (the API replicas and every actor in
`worker-*`, Ray's own processes beside them); the embedded PostgreSQL and Redis log under the
session's data folder. Tests that log secrets on purpose, to check the scrubber, do so in
process (caplog), never into these files.

The needles are the suite's known card numbers (`tests/test_pci_scan.py`), any Luhn-valid run
of 13 to 19 digits (not in Ray's C++ core logs, whose resource figures are long numbers: only
the known ones there), any 3 or 4 digits beside a CVC's name, and `pgk_`/`whsec_` secrets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ray.cluster_utils import Cluster

from tests.ray_cluster import session_logs
from tests.security.leaks import RAY_CORE_LOGS, Scanner
from tests.serve_app.routes.test_bank_debits import ACCOUNT, WALLET_TOKENS
from tests.test_pci_scan import PANS


@pytest.mark.after_all
async def test_no_log_file_holds_card_data_or_secrets(
    ray_nodes: Cluster, infra: dict[str, str]
) -> None:
    scanner = Scanner(pans=set(PANS), secrets={ACCOUNT, *WALLET_TOKENS}, any_cvc=True)
    logs = session_logs(ray_nodes)
    workers = await asyncio.to_thread(lambda: list(logs.glob("worker-*.err")))
    assert workers, "the scan must run after the tests that used the cluster"
    findings = await asyncio.to_thread(scanner.scan_files, logs, numbers_not_data=RAY_CORE_LOGS)
    data = Path(infra["data_dir"])
    findings += await asyncio.to_thread(scanner.scan_files, data, logs_only=True)
    assert not findings, "leaked:\n" + "\n".join(map(str, findings[:50]))
