"""C2PA Content Credentials (CONTRACT 8): manifests signed with the development chain read back
through c2pa-python's Reader the way an outside verifier reads them; the chain itself; the
system check."""

from __future__ import annotations

import json
import os
import stat
import struct
import threading
from datetime import UTC, datetime
from pathlib import Path

import c2pa
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.exceptions import ImproperlyConfigured

from generations.media.c2pa_manifest import (
    ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    Claim,
    Credentials,
    read,
    sign,
)
from generations.ops import signing
from tests.media_helpers import make_clip
from tests.ops_helpers import operator_c2pa_chain

CREATED = datetime(2026, 8, 2, 12, 0, tzinfo=UTC)


def claim(**overrides) -> Claim:
    fields = {
        "generator": "videogen/1.2.3",
        "model": "wan-25",
        "digital_source_type": TRAINED_ALGORITHMIC_MEDIA,
        "created": CREATED,
        "title": "gen_1.mp4",
    }
    return Claim(**{**fields, **overrides})


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", 30, shot=1)


@pytest.fixture
def dev() -> Credentials:
    return signing.credentials()


def manifest_store(path: Path) -> dict:
    with c2pa.Reader(str(path)) as reader:
        return json.loads(reader.json())


def top_level_boxes(data: bytes | bytearray):
    offset = 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
            header = 16
        yield kind.decode("latin-1"), offset + header, offset + size
        offset += size


# Manifests


def test_a_signed_video_reads_back_valid_with_what_made_it(tmp_path, clip, dev):
    signed = tmp_path / "signed.mp4"
    sign(clip, signed, claim(), dev)

    report = read(signed)
    assert report.present and report.valid
    assert report.generator == "videogen/1.2.3"
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert report.model == "wan-25"
    assert report.ingredients == []
    active = manifest_store(signed)
    manifest = active["manifests"][active["active_manifest"]]
    created = next(a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    assert created["data"]["actions"][0]["action"] == "c2pa.created"
    generation = next(a for a in manifest["assertions"] if a["label"] == "org.videogen.generation")
    assert generation["data"] == {"model": "wan-25", "created": CREATED.isoformat()}


def test_the_development_chain_is_untrusted_not_invalid(tmp_path, clip, dev):
    signed = tmp_path / "signed.mp4"
    sign(clip, signed, claim(), dev)

    report = read(signed)
    assert report.valid and not report.trusted
    assert report.codes == ["signingCredential.untrusted"]


def test_a_reader_that_trusts_the_ca_reports_it_trusted(tmp_path, clip, dev, settings):
    signed = tmp_path / "signed.mp4"
    sign(clip, signed, claim(), dev)
    ca = (Path(settings.DATA_DIR) / "c2pa" / "ca.pem").read_bytes()

    report = read(signed, trust_anchors_pem=ca)
    assert report.valid and report.trusted
    assert report.codes == []


def test_the_local_engine_says_algorithmic_media(tmp_path, clip, dev):
    signed = tmp_path / "signed.mp4"
    sign(clip, signed, claim(model="local", digital_source_type=ALGORITHMIC_MEDIA), dev)

    report = read(signed)
    assert report.valid
    assert report.digital_source_type == ALGORITHMIC_MEDIA
    assert report.model == "local"


def test_a_video_can_be_signed_in_place(clip, dev):
    sign(clip, clip, claim(), dev)

    assert read(clip).valid
    assert [p.name for p in clip.parent.iterdir() if p.name.startswith(".")] == []


def test_an_extension_lists_its_source_as_its_parent(tmp_path, clip, dev):
    source = make_clip(tmp_path / "gen_source.mp4", 20, shot=2)
    signed = tmp_path / "extended.mp4"
    sign(clip, signed, claim(ingredients=(source,)), dev)

    assert read(signed).ingredients == ["gen_source.mp4"]
    store = manifest_store(signed)
    (ingredient,) = store["manifests"][store["active_manifest"]]["ingredients"]
    assert ingredient["relationship"] == "parentOf"


def test_a_sequence_lists_its_shots_as_components(tmp_path, clip, dev):
    shots = tuple(make_clip(tmp_path / f"shot_{n}.mp4", 10, shot=n) for n in range(3))
    signed = tmp_path / "sequence.mp4"
    sign(clip, signed, claim(ingredients=shots), dev)

    report = read(signed)
    assert report.valid
    assert report.ingredients == ["shot_0.mp4", "shot_1.mp4", "shot_2.mp4"]
    store = manifest_store(signed)
    ingredients = store["manifests"][store["active_manifest"]]["ingredients"]
    assert {i["relationship"] for i in ingredients} == {"componentOf"}


def test_a_providers_manifest_is_kept_as_an_ingredient(tmp_path, clip, dev):
    original = tmp_path / "provider_original.mp4"
    provider = claim(generator="someprovider/9.0", model="veo-3", title="veo.mp4")
    sign(make_clip(tmp_path / "raw.mp4", 30, shot=5), original, provider, dev)
    reencoded = tmp_path / "ours.mp4"

    sign(clip, reencoded, claim(model="veo-3", parent_manifest=original), dev)

    report = read(reencoded)
    assert report.valid
    assert report.generator == "videogen/1.2.3"
    assert report.ingredients == ["provider_original.mp4"]
    store = manifest_store(reencoded)
    (ingredient,) = store["manifests"][store["active_manifest"]]["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    kept = store["manifests"][ingredient["active_manifest"]]
    assert kept["claim_generator_info"][0]["name"] == "someprovider"
    assert kept["title"] == "veo.mp4"


# Tampering and foreign files


def test_flipping_one_byte_of_the_video_makes_it_invalid(tmp_path, clip, dev):
    signed = tmp_path / "signed.mp4"
    sign(clip, signed, claim(), dev)
    data = bytearray(signed.read_bytes())
    start, end = next((s, e) for kind, s, e in top_level_boxes(data) if kind == "mdat")
    assert end - start > 1000
    data[(start + end) // 2] ^= 0x01
    signed.write_bytes(bytes(data))

    report = read(signed)
    assert report.present
    assert not report.valid
    assert "assertion.bmffHash.mismatch" in report.codes


def test_a_video_without_a_manifest_has_none(clip):
    assert read(clip).present is False


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, os.urandom(4096), b"....ftypisom" * 9])
def test_garbage_has_no_manifest(tmp_path, content):
    path = tmp_path / "upload.mp4"
    path.write_bytes(content)

    report = read(path)
    assert report.present is False
    assert not report.valid


def test_a_missing_file_has_no_manifest(tmp_path):
    assert read(tmp_path / "nothing.mp4").present is False


def test_a_failed_signing_leaves_no_file(tmp_path, clip):
    wrong = Credentials(cert_chain_pem=b"not a certificate", key_pem=b"not a key")
    with pytest.raises(c2pa.C2paError):
        sign(clip, tmp_path / "signed.mp4", claim(), wrong)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_credentials_never_show_the_key():
    credentials = Credentials(cert_chain_pem=b"CERT", key_pem=b"-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE" not in repr(credentials)


# The development chain


def test_the_development_chain_is_made_once_and_reused(settings):
    first = signing.credentials()
    second = signing.credentials()

    assert first == second
    folder = Path(settings.DATA_DIR) / "c2pa"
    assert sorted(p.name for p in folder.iterdir()) == [
        "ca.key",
        "ca.pem",
        "signer.key",
        "signer.pem",
    ]
    assert (
        first.cert_chain_pem
        == (folder / "signer.pem").read_bytes() + (folder / "ca.pem").read_bytes()
    )


def test_development_keys_are_private_files(settings):
    signing.credentials()
    folder = Path(settings.DATA_DIR) / "c2pa"

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "signer.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "ca.key").stat().st_mode) == 0o600


def test_processes_racing_to_make_the_chain_agree(settings):
    barrier = threading.Barrier(4)
    found: list[Credentials] = []

    def make() -> None:
        barrier.wait()
        found.append(signing.credentials())

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(found) == 4 and len(set(found)) == 1
    assert [p.name for p in Path(settings.DATA_DIR).iterdir() if p.name.startswith(".")] == []


def test_the_signing_certificate_has_the_c2pa_profile(settings):
    signing.credentials()
    folder = Path(settings.DATA_DIR) / "c2pa"
    signer = x509.load_pem_x509_certificate((folder / "signer.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())

    assert signer.version == x509.Version.v3
    assert signer.issuer == ca.subject
    constraints = signer.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    ekus = list(signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == [ExtendedKeyUsageOID.EMAIL_PROTECTION, signing.DOCUMENT_SIGNING]
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = signer.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert signer.not_valid_before_utc < datetime.now(UTC) < signer.not_valid_after_utc

    ca_constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_constraints.critical and ca_constraints.value.ca is True
    ca_usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ca_usage.key_cert_sign and not ca_usage.digital_signature
    signer.verify_directly_issued_by(ca)


def test_an_operators_certificate_is_used_when_set(tmp_path, settings, clip):
    chain, key, ca = operator_c2pa_chain(tmp_path / "operator")
    settings.VIDEOGEN_C2PA_CERT = str(chain)
    settings.VIDEOGEN_C2PA_KEY = str(key)

    credentials = signing.credentials()

    assert not signing.is_development()
    assert credentials == Credentials(cert_chain_pem=chain.read_bytes(), key_pem=key.read_bytes())
    assert not (Path(settings.DATA_DIR) / "c2pa").exists()
    signed = tmp_path / "signed.mp4"
    sign(clip, signed, claim(), credentials)
    assert read(signed, trust_anchors_pem=ca.read_bytes()).trusted


def test_half_an_operators_certificate_is_refused(settings):
    settings.VIDEOGEN_C2PA_CERT = "/etc/videogen/cert.pem"
    settings.VIDEOGEN_C2PA_KEY = ""

    with pytest.raises(ImproperlyConfigured):
        signing.credentials()


def test_the_generator_names_videogen_and_its_version():
    assert signing.generator().startswith("videogen/")


# manage.py check


def test_check_warns_when_production_signs_with_the_development_chain(settings):
    settings.DEBUG = False

    messages = signing.check_signing_credentials()

    assert [m.id for m in messages] == ["videogen.W201"]
    assert "VIDEOGEN_C2PA_CERT" in str(messages[0].hint)


def test_check_is_quiet_in_development(settings):
    settings.DEBUG = True

    assert signing.check_signing_credentials() == []


def test_check_is_quiet_with_an_operators_certificate(tmp_path, settings):
    chain, key, _ = operator_c2pa_chain(tmp_path / "operator")
    settings.DEBUG = False
    settings.VIDEOGEN_C2PA_CERT = str(chain)
    settings.VIDEOGEN_C2PA_KEY = str(key)

    assert signing.check_signing_credentials() == []


def test_check_names_a_half_set_or_unreadable_certificate(tmp_path, settings):
    settings.VIDEOGEN_C2PA_CERT = str(tmp_path / "cert.pem")
    settings.VIDEOGEN_C2PA_KEY = ""
    assert [m.id for m in signing.check_signing_credentials()] == ["videogen.E202"]

    settings.VIDEOGEN_C2PA_KEY = str(tmp_path / "key.pem")
    assert [m.id for m in signing.check_signing_credentials()] == ["videogen.E203"] * 2


def test_check_is_registered(settings):
    from django.core import checks

    settings.DEBUG = False
    assert "videogen.W201" in [m.id for m in checks.run_checks()]
