"""The engines: the protocol (base.py), which one serves a model here (registry.py), and
the engines themselves: local/ (procedural), diffusers/ (local GPU pipelines), hosted/
(providers). Adding an engine touches this package only."""
