"""Thin DVC entry points: each stage parses its arguments, checks params.yaml and calls the library."""
