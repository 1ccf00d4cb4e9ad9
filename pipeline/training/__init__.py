"""Training and evaluating heads on cached tensors: data, protocols, the loop, checkpoints, predictions."""
