"""Served over HTTPS from a configured certificate (pages, API and sockets), and behind a reverse proxy
the client's address is taken from X-Forwarded-For only when the proxy is one the configuration trusts."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.config import ConfigError, load
from tests.conftest import ROOT, config_text_for_tests, free_port, server_with_media
from tests.helpers import PASSWORD


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert, key_file


async def test_the_server_speaks_https_and_wss_from_its_certificate(database_url: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    config = tmp_path / "liandong.toml"
    config.write_text(config_text_for_tests().replace('tls_certificate = ""', f'tls_certificate = "{cert}"')
                      .replace('tls_key = ""', f'tls_key = "{key}"'), encoding="utf-8")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=ROOT, stdout=out,
                                  stderr=subprocess.STDOUT, env={**os.environ, "LIANDONG_CONFIG": str(config),
                                                                 "LIANDONG_DATABASE_URL": database_url,
                                                                 "LIANDONG_LISTEN": f"127.0.0.1:{port}"})
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as https:
            for _ in range(300):  # up to a minute: the HTTPS twin of conftest.wait_healthy
                try:
                    async with https.get(f"https://127.0.0.1:{port}/healthz") as health:
                        if health.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert server.poll() is None, log.read_text(errors="replace")
                await asyncio.sleep(0.2)
            async with https.post(f"https://127.0.0.1:{port}/api/login",
                                  json={"username": "fire-xiling", "password": PASSWORD}) as login:
                token = (await login.json())["token"]
            async with https.ws_connect(f"wss://127.0.0.1:{port}/ws/terminal") as terminal:
                await terminal.send_json({"type": "hello", "token": token})
                assert (await terminal.receive_json(timeout=10))["type"] == "welcome"
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):  # no plain HTTP on the TLS port
                async with plain.get(f"http://127.0.0.1:{port}/healthz") as response:
                    await response.read()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_certificate_without_its_key_is_a_configuration_error(tmp_path: Path) -> None:
    cert, _key = self_signed(tmp_path)
    (tmp_path / "liandong.toml").write_text(
        config_text_for_tests().replace('tls_certificate = ""', f'tls_certificate = "{cert}"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"server\.tls_key"):
        load(tmp_path / "liandong.toml", environ={})


async def throttled_after(base: str, forwarded: str) -> int:
    """Failed log-ins with different names, said to come from `forwarded`, until one is refused as 429."""
    async with aiohttp.ClientSession() as http:
        for attempt in range(1, 40):
            async with http.post(base + "/api/login", json={"username": f"nobody-{attempt}", "password": "x"},
                                 headers={"X-Forwarded-For": f"198.51.100.9, {forwarded}"}) as response:
                if response.status == 429:
                    return attempt
    return 0


async def test_a_trusted_proxy_s_forwarded_address_is_the_one_throttled(database_url: str, tmp_path: Path) -> None:
    edits = {"trusted_proxies = []": 'trusted_proxies = ["127.0.0.1"]'}
    async with server_with_media(database_url, tmp_path, edits) as (liandong, _media):
        assert await throttled_after(liandong.base_url, "203.0.113.7") == 31  # 30 failures a minute per address
        status, _ = await liandong.call("POST", "/api/login", {"username": "dispatcher", "password": PASSWORD},
                                        headers={"X-Forwarded-For": "203.0.113.8"})
        assert status == 200  # a colleague behind the same proxy, from another address, logs in


async def test_an_untrusted_peer_s_forwarded_header_is_ignored(database_url: str, tmp_path: Path) -> None:
    async with server_with_media(database_url, tmp_path, {}) as (liandong, _media):
        await throttled_after(liandong.base_url, "203.0.113.7")
        status, _ = await liandong.call("POST", "/api/login", {"username": "dispatcher", "password": PASSWORD},
                                        headers={"X-Forwarded-For": "203.0.113.8"})
        assert status == 429  # the header did not change who was asking: 127.0.0.1, already throttled
