"""Evaluation: metrics computed on a trained head's predictions."""
