"""HTTPS end to end: paygrid's TLS front (HAProxy with a self-signed certificate made here) in
front of the session's API, which trusts 127.0.0.1 as a proxy. Over TLS, `/health` answers with
HSTS and an authenticated call works; the app sees the client's real address through both
HAProxies (a key allowed only from 127.0.0.2 works when the client connects from there, and
from nowhere else), and a client cannot choose its own address with `X-Forwarded-For`."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.runtime import local
from serve_app.tls import TlsFront

CLIENT = "127.0.0.2"  # Linux answers on all of 127/8: a second client address on this machine


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, valid a day: the PEM HAProxy reads (chain and key) and the
    certificate alone, for the client to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paygrid test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    bundle, ca = directory / "paygrid.pem", directory / "ca.pem"
    bundle.write_bytes(cert_pem + key_pem)
    bundle.chmod(0o600)
    ca.write_bytes(cert_pem)
    return bundle, ca


@pytest.fixture(scope="module")
def https(
    cluster: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    bundle, ca = self_signed(directory)
    tls_settings = cluster.model_copy(
        update={"tls_cert": str(bundle), "tls_port": local.free_port(), "data_dir": str(directory)}
    )
    with TlsFront.from_settings(tls_settings):
        yield f"https://127.0.0.1:{tls_settings.tls_port}", ca


def client(ca: Path, *, source: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(
            verify=ssl.create_default_context(cafile=str(ca)), local_address=source
        ),
        timeout=30,
    )


def test_health_over_https_carries_hsts(https: tuple[str, Path], cluster: Settings) -> None:
    base, ca = https
    with client(ca) as tls:
        answer = tls.get(f"{base}/health")
    assert answer.status_code == 200
    assert answer.json()["data"]["status"] in ("ok", "degraded")
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    assert answer.headers["x-content-type-options"] == "nosniff"
    # Plain HTTP gets no HSTS: browsers ignore it there, and it must not claim TLS.
    plain = httpx.get(f"http://127.0.0.1:{cluster.port}/health", timeout=30)
    assert "strict-transport-security" not in plain.headers


def test_a_client_without_the_certificate_is_refused(https: tuple[str, Path]) -> None:
    base, _ = https
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=30)


async def test_the_app_sees_the_real_client_address_through_the_proxy(
    https: tuple[str, Path], cluster: Settings, keys: ApiKeyService
) -> None:
    base, ca = https
    _, secret = await keys.create(
        name="tls fenced",
        scopes=frozenset({Scope.PAYMENTS_READ}),
        allowed_networks=(ip_network(f"{CLIENT}/32"),),
    )
    headers = {"Authorization": f"Bearer {secret}"}
    with client(ca, source=CLIENT) as tls:
        answer = tls.get(f"{base}/api/payments", params={"limit": 1}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    assert "strict-transport-security" in answer.headers
    with client(ca) as tls:
        elsewhere = tls.get(f"{base}/api/payments", headers=headers)
        # The proxy drops what the client claims and appends what it saw.
        forged = tls.get(f"{base}/api/payments", headers={**headers, "X-Forwarded-For": CLIENT})
    for refused in (elsewhere, forged):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "ip_not_allowed"


def test_a_certificate_without_its_key_stops_start_up(tmp_path: Path) -> None:
    _, ca = self_signed(tmp_path)
    front = TlsFront(
        cert=str(ca),
        host="127.0.0.1",
        port=local.free_port(),
        upstream_port=local.free_port(),
        run_dir=tmp_path,
    )
    with pytest.raises(RuntimeError, match="HAProxy"):
        front.start()
