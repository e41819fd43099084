"""The soak and chaos run: `python -m benchmarks.soak` (see benchmarks/README.md, "Soak and chaos")."""
