"""The built-in `local` engine: procedural scenes and camera moves, offline, on the CPU."""
