"""The Content-Security-Policy of every response, and the other security headers.

Pages load scripts and styles from this origin only. The few inline `onclick` handlers of
the templates (copy buttons) are allowed by their exact hash ('unsafe-hashes'); any other
inline script, including one injected through user text, does not run. Styles may be
inline (htmx adds one, templates set aspect ratios). Nothing may frame any page but the
player of a shared video (`/s/<token>/embed`), which any site may embed (EMBED_POLICY).
Responses that are not HTML (JSON, media) get a policy that allows nothing at all."""

from __future__ import annotations

import base64
import hashlib

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

# The exact source of each inline event handler in templates/ (tests check the list).
INLINE_HANDLERS = (
    "navigator.clipboard.writeText(document.getElementById('docs-markdown').value); "
    "this.textContent='Copied'",
    "navigator.clipboard.writeText(document.getElementById('invite-link').textContent); "
    "this.textContent='Copied'",
    "navigator.clipboard.writeText(document.getElementById('new-key').textContent); "
    "this.textContent='Copied'",
    "navigator.clipboard.writeText(document.getElementById('wh-secret').textContent); "
    "this.textContent='Copied'",
)


def source_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-hashes' " + " ".join(map(source_hash, INLINE_HANDLERS)),
        "style-src 'self' 'unsafe-inline'",
        # Posters and videos may come from object storage (VIDEOGEN_STORAGE_URL).
        "img-src 'self' data: blob: https:",
        "media-src 'self' blob: https:",
        "connect-src 'self'",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
# The embeddable player of a shared video: no script at all, framed by anyone (an <iframe>
# on a blog, X/Twitter's player card).
EMBED_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src 'self' data: blob: https:",
        "media-src 'self' blob: https:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors *",
    ]
)


def add_security_headers(
    request: HttpRequest, response: HttpResponseBase, *, hsts: bool = False
) -> None:
    """Headers every response carries (set only where a view did not set its own)."""
    is_html = response.get("Content-Type", "").startswith("text/html")
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY if is_html else DATA_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY or "same-origin")
    if not getattr(response, "xframe_options_exempt", False):
        response.headers.setdefault("X-Frame-Options", "DENY")
    if hsts and settings.SECURE_HSTS_SECONDS and request.is_secure():
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        response.headers.setdefault("Strict-Transport-Security", value)
