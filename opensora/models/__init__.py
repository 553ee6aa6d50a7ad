"""World-model networks: the action-conditioned STDiT3 and the per-frame VAE."""
