"""The key and certificate chain that sign C2PA manifests: a value type, here so that both the
pure media code that signs (media/c2pa_manifest.py) and the settings-aware code that finds the
files (ops/signing.py) can name it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Credentials:
    """PEM bytes. `cert_chain_pem`: the signing certificate first, then its issuers (the CA);
    `key_pem`: the signing certificate's private key (ES256: an EC P-256 key, PKCS#8)."""

    cert_chain_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:
        # Never the key in a traceback or a log line.
        return f"Credentials(cert_chain_pem=<{len(self.cert_chain_pem)} bytes>, key_pem=<hidden>)"
