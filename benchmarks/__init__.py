"""Benchmarks: direct vs `QlikSSOMiddleware` vs nginx, as ratios against a baseline in the same run.

Run `python -m benchmarks` (add `--quick` for the CI smoke run); see `benchmarks/README.md`.
"""
