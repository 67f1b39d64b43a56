"""HTTP plumbing the API and the dashboard share: middleware, security headers, files served
with byte ranges, the API's DB-thread pool, per-address rate limits and the checks of a video
uploaded for verification."""
