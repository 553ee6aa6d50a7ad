"""Ray worker groups and the collective helpers the workers use."""
