"""C2PA Content Credentials for our MP4s (CONTRACT 8): `sign` embeds a signed manifest that says
the video is AI-made, by which model, when, and from which other videos; `read` validates one
the way an outside verifier would.

Both go through `c2pa-python`, the Content Authenticity Initiative's bindings to their Rust SDK
(c2pa-rs): its Builder writes the manifest store into a `uuid` box after `ftyp` and binds it to
every other box with a BMFF hash, so changing one byte of the video (or of `moov`) breaks it.
Signing is offline: no time-stamp authority, so a manifest is valid while its certificate is.
Pure: no Django; the credentials come from the caller (ops/signing.py finds them)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import c2pa

from generations.catalog import ALGORITHMIC_MEDIA, TRAINED_ALGORITHMIC_MEDIA
from generations.credentials import Credentials

__all__ = [
    "ALGORITHMIC_MEDIA",
    "TRAINED_ALGORITHMIC_MEDIA",
    "Claim",
    "Credentials",
    "Report",
    "read",
    "sign",
]

MP4 = "video/mp4"
# Our own assertion: the model key and the creation time, as data a reader can rely on.
GENERATION_ASSERTION = "org.videogen.generation"
ACTIONS_ASSERTIONS = ("c2pa.actions.v2", "c2pa.actions")

# Never fetch anything while signing or reading: an uploaded file may point a reader at a
# remote manifest or an OCSP responder of the uploader's choosing.
_OFFLINE = {"remote_manifest_fetch": False, "ocsp_fetch": False}
# Video thumbnails are not made by the SDK anyway; the flag keeps it from trying for stills.
_SIGN_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}, "verify": _OFFLINE}


@dataclass(frozen=True)
class Claim:
    """What a manifest says about one video.

    `ingredients` are the MP4s this one is made from: an extension's source or an export's
    video (one: recorded as its parent, `parentOf`), a sequence's shots (several: each a
    `componentOf`). `parent_manifest` is a hosted provider's original file, whose own manifest
    is kept inside ours as the parent ingredient; the `ingredients` are then components (C2PA
    allows one parent)."""

    generator: str  # "videogen/<version>"
    model: str
    digital_source_type: str  # TRAINED_ALGORITHMIC_MEDIA or ALGORITHMIC_MEDIA
    created: datetime
    title: str
    ingredients: tuple[Path, ...] = ()
    parent_manifest: Path | None = None


@dataclass
class Report:
    """What `read` found. `valid`: the manifest is intact and its signature verifies (a signer
    this reader does not trust is still valid; `trusted` says whether it is). `codes`: the
    failure codes of the validation (C2PA's validation status codes, e.g.
    `assertion.bmffHash.mismatch`, `signingCredential.untrusted`)."""

    present: bool
    valid: bool = False
    trusted: bool = False
    generator: str | None = None
    digital_source_type: str | None = None
    model: str | None = None
    ingredients: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    # Who signed it: the signing certificate's organisation, as the manifest's signature
    # reports it (whether anyone trusts that name is `trusted`).
    signer: str | None = None


def sign(src: Path, dest: Path, claim: Claim, credentials: Credentials) -> None:
    """Write `dest`: `src` with a signed manifest for `claim` embedded. `dest` may be `src`; it
    is replaced atomically, and left alone if signing fails (c2pa.C2paError)."""
    name, _, version = claim.generator.partition("/")
    agent = {"name": name, "version": version} if version else {"name": name}
    created = claim.created.isoformat()
    manifest = {
        "claim_generator_info": [agent],
        "title": claim.title,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": claim.digital_source_type,
                            "softwareAgent": agent,
                            "when": created,
                            "description": f"Generated with the model {claim.model}",
                        }
                    ]
                },
            },
            {"label": GENERATION_ASSERTION, "data": {"model": claim.model, "created": created}},
        ],
    }
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, credentials.cert_chain_pem, credentials.key_pem, None
    )
    dest = Path(dest)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".c2pa")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with (
            c2pa.Context.from_dict(_SIGN_SETTINGS) as context,
            c2pa.Signer.from_info(info) as signer,
            c2pa.Builder(manifest, context) as builder,
        ):
            for path, relationship in _ingredients(claim):
                with open(path, "rb") as stream:
                    builder.add_ingredient(
                        {"title": path.name, "relationship": relationship}, MP4, stream
                    )
            with open(src, "rb") as source, open(tmp, "w+b") as target:
                builder.sign(signer, MP4, source, target)
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _ingredients(claim: Claim) -> list[tuple[Path, str]]:
    if claim.parent_manifest is None and len(claim.ingredients) == 1:
        return [(claim.ingredients[0], "parentOf")]
    parent = [(claim.parent_manifest, "parentOf")] if claim.parent_manifest else []
    return parent + [(path, "componentOf") for path in claim.ingredients]


def read(path: Path, trust_anchors_pem: bytes | None = None) -> Report:
    """The manifest of the MP4 at `path`, validated: hashes, signature, certificate profile,
    and trust against `trust_anchors_pem` (PEM certificates; without them no signer is
    trusted). Never raises on what the file holds: anything unreadable is `present=False`."""
    settings: dict[str, Any] = {"verify": _OFFLINE}
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem.decode("ascii")}
    try:
        with (
            c2pa.Context.from_dict(settings) as context,
            open(path, "rb") as stream,
            c2pa.Reader(MP4, stream, None, context) as reader,
        ):
            state = reader.get_validation_state()
            store = json.loads(reader.json())
    except (c2pa.C2paError, OSError, ValueError, UnicodeError):
        # ManifestNotFound for a plain MP4; other errors for what is not an MP4 or whose
        # manifest store cannot be parsed: either way, no manifest to report.
        return Report(present=False)
    manifest = store.get("manifests", {}).get(store.get("active_manifest") or "")
    if not isinstance(manifest, dict):
        return Report(present=False)
    codes = _failure_codes(store)
    return Report(
        present=True,
        valid=state in ("Valid", "Trusted"),
        trusted=state == "Trusted",
        generator=_generator(manifest),
        digital_source_type=_digital_source_type(manifest),
        model=_assertion(manifest, GENERATION_ASSERTION).get("model"),
        ingredients=[str(i.get("title", "")) for i in manifest.get("ingredients", [])],
        codes=codes,
        signer=(manifest.get("signature_info") or {}).get("issuer"),
    )


def _failure_codes(store: dict[str, Any]) -> list[str]:
    results = store.get("validation_results") or {}
    failures = list((results.get("activeManifest") or {}).get("failure", []))
    for delta in results.get("ingredientDeltas", []):
        failures += (delta.get("validationDeltas") or {}).get("failure", [])
    if not results:
        failures = store.get("validation_status", [])
    return [str(item.get("code")) for item in failures]


def _generator(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict) and info[0].get("name"):
        first = info[0]
        return f"{first['name']}/{first['version']}" if first.get("version") else first["name"]
    # Claims of version 1 name their generator in one string.
    return manifest.get("claim_generator")


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any]:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == label and isinstance(assertion.get("data"), dict):
            data: dict[str, Any] = assertion["data"]
            return data
    return {}


def _digital_source_type(manifest: dict[str, Any]) -> str | None:
    for label in ACTIONS_ASSERTIONS:
        for action in _assertion(manifest, label).get("actions", []):
            if action.get("action") == "c2pa.created" and action.get("digitalSourceType"):
                return str(action["digitalSourceType"])
    return None
