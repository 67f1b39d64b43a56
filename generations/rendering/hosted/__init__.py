"""Hosted providers (fal, Replicate, Gemini, OpenAI): their clients, the map of which serves
each model (providers.toml, routes.py, providers.py), and the result collector (ingest.py)."""
