"""Benchmarks of the two-stage design: scripts, not tests (`python -m bench.run_all`)."""
