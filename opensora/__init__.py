"""The action-conditioned video world model (STDiT3 over SDXL-VAE latents); independent of the ``wmpo`` package."""
