"""The SSRF-safe HTTP client: image fetching and webhook delivery go through it."""
