"""Running the service: /healthz and /metrics, logs, retention, media storage, background
loops."""
