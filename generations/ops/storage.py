"""Where media files live: the data dir (default) or an S3-compatible bucket.

`VIDEOGEN_STORAGE_URL=s3://bucket/prefix` selects django-storages' S3Storage; credentials,
endpoint and region come from the usual `AWS_*` variables. Either way users never see a
storage URL: our views stream every file (generations/api/files.py), with byte ranges.
boto3 is imported only when object storage is configured, so the default stays light.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage

if TYPE_CHECKING:  # settings import this module: keep it free of model imports
    from django.db.models.fields.files import FieldFile

ENV = "VIDEOGEN_STORAGE_URL"
FILESYSTEM = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
S3_BACKEND = "storages.backends.s3.S3Storage"
# Uploads from workers go in parts of this size, a few at a time: a 1 GB video never sits
# in memory, at most MAX_PARTS_IN_MEMORY parts of it do.
PART_SIZE = 8 * 1024 * 1024
UPLOAD_THREADS = 4
MAX_PARTS_IN_MEMORY = 4
# A stored file opened whole (an input image copied to a worker) spills to disk past this.
MAX_MEMORY_READ = 16 * 1024 * 1024
# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _invalid(url: str, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"{ENV}={url!r} {why}. Use s3://bucket/optional/prefix, or leave {ENV} empty "
        "to keep files in the data dir."
    )


def storage_from_url(url: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The STORAGES["default"] entry for VIDEOGEN_STORAGE_URL (env: the AWS_* variables)."""
    url = url.strip()
    if not url:
        return dict(FILESYSTEM)
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise _invalid(url, f"has scheme {parts.scheme or '(none)'!r}; only s3:// is supported")
    if parts.username or parts.password:
        raise _invalid(url, "carries credentials; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    if parts.query or parts.fragment or parts.port:
        raise _invalid(url, "has a port, query or fragment; set AWS_S3_ENDPOINT_URL for a server")
    bucket = parts.hostname or ""
    if not bucket:
        raise _invalid(url, "names no bucket")
    if not _BUCKET.match(bucket):
        raise _invalid(url, f"names {bucket!r}, which is not a valid bucket name")
    segments = [s for s in parts.path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise _invalid(url, "has '.' or '..' in its prefix")

    from boto3.s3.transfer import TransferConfig  # only with object storage configured

    transfer = TransferConfig(
        multipart_threshold=PART_SIZE,
        multipart_chunksize=PART_SIZE,
        max_concurrency=UPLOAD_THREADS,
    )
    # Read by s3transfer; boto3's constructor does not take it.
    transfer.max_in_memory_upload_chunks = MAX_PARTS_IN_MEMORY
    return {
        "BACKEND": S3_BACKEND,
        "OPTIONS": {
            "bucket_name": bucket,
            "location": "/".join(segments),
            # Unset values fall through to boto3's own chain (env, ~/.aws, instance roles).
            "access_key": env.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
            "security_token": env.get("AWS_SESSION_TOKEN") or None,
            "endpoint_url": env.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env.get("AWS_S3_REGION_NAME") or None,
            # As on disk: a new name rather than overwriting, private objects.
            "file_overwrite": False,
            "default_acl": None,
            "max_memory_size": MAX_MEMORY_READ,
            "transfer_config": transfer,
        },
    }


def open_range(field: FieldFile, start: int, length: int) -> IO[bytes]:
    """A readable stream of `length` bytes of a stored file, from byte `start`."""
    storage, name = field.storage, str(field.name)
    if not isinstance(storage, FileSystemStorage):  # the default is opened and sought below
        from storages.backends.s3 import S3Storage  # only reached with object storage
        from storages.utils import clean_name

        if isinstance(storage, S3Storage):
            # A ranged GET: opening the object itself would first download all of it.
            if length <= 0:
                return io.BytesIO()
            response = storage.connection.meta.client.get_object(
                Bucket=storage.bucket_name,
                Key=storage._normalize_name(clean_name(name)),
                Range=f"bytes={start}-{start + length - 1}",
            )
            body: IO[bytes] = response["Body"]
            return body
    fh: IO[bytes] = storage.open(name, "rb")
    fh.seek(start)
    return fh


def missing_file_errors() -> tuple[type[BaseException], ...]:
    """What reading a stored file raises when it is gone, whichever storage holds it."""
    errors: tuple[type[BaseException], ...] = (FileNotFoundError,)
    if "botocore" in sys.modules:  # loaded only when object storage is configured
        from botocore.exceptions import ClientError

        errors += (ClientError,)
    return errors


def scratch_dir() -> Path:
    """The data dir's `work/` folder, where workers (a run, a stitch, an export) and verify
    checks keep their temporary files (each removes its own)."""
    path = Path(settings.DATA_DIR) / "work"
    path.mkdir(parents=True, exist_ok=True)
    return path
