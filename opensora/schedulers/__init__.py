"""Diffusion schedulers (rectified flow)."""
