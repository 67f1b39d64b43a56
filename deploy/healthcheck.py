"""The container's health check: GET /healthz on this container's web server, exit 0 on 200
(`ok` or `degraded`: a worker outage must not pull the web), 1 otherwise (503 `unhealthy`,
no answer). The Host header is the first of ALLOWED_HOSTS, since the site refuses others."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4


def probe_host(allowed_hosts: str) -> str:
    """A host name the site accepts: `.example.com` (any subdomain) becomes `example.com`."""
    first = allowed_hosts.split(",")[0].strip().lstrip(".")
    return "localhost" if first in ("", "*") else first


def main() -> int:
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        headers={"Host": probe_host(os.environ.get("ALLOWED_HOSTS", "localhost"))},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthz: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
