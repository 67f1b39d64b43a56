"""Which key signs our C2PA manifests (CONTRACT 8).

An operator sets `VIDEOGEN_C2PA_CERT` (the signing certificate, then its issuers, PEM) and
`VIDEOGEN_C2PA_KEY` (its private key, PEM). Without them the first use generates a development
chain in `<DATA_DIR>/c2pa/`: a CA (`ca.pem`, `ca.key`) and an ES256 signing certificate it
issued (`signer.pem`, `signer.key`). Manifests signed with it validate but are trusted by no
one else; `manage.py check` warns when production runs on it.

Key material lives only in those key files (mode 0600, in a 0700 folder); it is never logged,
and `Credentials` hides it from its repr."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from generations.credentials import Credentials

DEV_DIR_NAME = "c2pa"
DEV_CA_YEARS = 20
DEV_SIGNER_YEARS = 5
# RFC 9336's document-signing key purpose; C2PA validators accept it, as they accept
# id-kp-emailProtection (c2pa-rs's default list, sdk/src/crypto/cose/valid_eku_oids.cfg).
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# The development chain's organisation: also how a check recognises a video it signed
# (core/provenance.verify).
DEVELOPMENT_ORGANIZATION = "videogen development (not trusted)"


def generator() -> str:
    """The claim generator our manifests name: "videogen/<installed version>"."""
    try:
        return f"videogen/{importlib.metadata.version('videogen')}"
    except importlib.metadata.PackageNotFoundError:
        return "videogen/0+unknown"


def is_development() -> bool:
    """True when no operator certificate is configured: manifests are signed with the
    generated development chain."""
    return not (settings.VIDEOGEN_C2PA_CERT or settings.VIDEOGEN_C2PA_KEY)


def credentials() -> Credentials:
    """The operator's certificate chain and key, or the development chain (made on first use)."""
    cert, key = settings.VIDEOGEN_C2PA_CERT, settings.VIDEOGEN_C2PA_KEY
    if is_development():
        folder = development_chain(Path(settings.DATA_DIR))
        cert_pem = (folder / "signer.pem").read_bytes() + (folder / "ca.pem").read_bytes()
        return Credentials(cert_chain_pem=cert_pem, key_pem=(folder / "signer.key").read_bytes())
    if not (cert and key):
        raise ImproperlyConfigured("Set both VIDEOGEN_C2PA_CERT and VIDEOGEN_C2PA_KEY, or neither.")
    return Credentials(cert_chain_pem=Path(cert).read_bytes(), key_pem=Path(key).read_bytes())


def development_chain(data_dir: Path) -> Path:
    """`<data_dir>/c2pa/`, holding the development CA and signing certificate; made once.

    The four files are written into a private temporary folder that is then renamed into
    place: a reader sees all of them or none, and when two processes race, the second rename
    fails (the folder exists) and that process uses the winner's chain."""
    folder = data_dir / DEV_DIR_NAME
    if (folder / "signer.key").exists():
        return folder
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".{DEV_DIR_NAME}-"))  # mode 0700
    try:
        for name, data, mode in _new_chain():
            _write(staging / name, data, mode)
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / "signer.key").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode: a key file is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEVELOPMENT_ORGANIZATION),
        ]
    )


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _new_chain() -> list[tuple[str, bytes, int]]:
    """A CA and a signing certificate that meet the C2PA certificate profile (specification
    section 14.5; what c2pa-rs checks in `check_certificate_profile`): X.509 v3, ECDSA P-256
    with SHA-256, the signer not a CA, keyUsage digitalSignature (critical), an
    extendedKeyUsage of emailProtection and documentSigning (never anyExtendedKeyUsage),
    subject and authority key identifiers; the CA with basicConstraints CA:true (critical,
    path length 0) and keyCertSign."""
    now = datetime.now(UTC)
    # An hour back: a clock a little behind ours still finds the certificates valid.
    start = now - timedelta(hours=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("videogen development CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + timedelta(days=365 * DEV_CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(digital_signature=False, cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name("videogen development signer"))
        .issuer_name(ca_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + timedelta(days=365 * DEV_SIGNER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return [
        ("ca.pem", ca.public_bytes(pem), 0o644),
        ("ca.key", _private_pem(ca_key), 0o600),
        ("signer.pem", signer.public_bytes(pem), 0o644),
        ("signer.key", _private_pem(signer_key), 0o600),
    ]


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def check_signing_credentials(
    app_configs: object = None, **kwargs: object
) -> list[checks.CheckMessage]:
    """`manage.py check` (registered in apps.py): production on the development chain, or a
    half-configured or unreadable operator certificate."""
    cert, key = settings.VIDEOGEN_C2PA_CERT, settings.VIDEOGEN_C2PA_KEY
    if is_development():
        if settings.DEBUG:
            return []
        return [
            checks.Warning(
                "Videos are signed (C2PA) with the development certificate in "
                f"{Path(settings.DATA_DIR) / DEV_DIR_NAME} (made on first use), which no one "
                "else trusts.",
                hint="Set VIDEOGEN_C2PA_CERT (certificate chain, PEM) and VIDEOGEN_C2PA_KEY "
                "(its private key, PEM) to a document-signing or C2PA certificate from a CA "
                "on the C2PA trust list; see README.md, 'Provenance: signing keys'.",
                id="videogen.W201",
            )
        ]
    if not (cert and key):
        return [
            checks.Error(
                "Only one of VIDEOGEN_C2PA_CERT and VIDEOGEN_C2PA_KEY is set.",
                hint="Set both (certificate chain and private key, PEM files), or neither.",
                id="videogen.E202",
            )
        ]
    unreadable = [name for name, path in (("CERT", cert), ("KEY", key)) if not _readable(path)]
    return [
        checks.Error(f"VIDEOGEN_C2PA_{name} names no readable file.", id="videogen.E203")
        for name in unreadable
    ]


def _readable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.R_OK)
