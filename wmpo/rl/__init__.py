"""GRPO for action-token policies: rewards, advantages, masks, the clipped objective, group filtering."""
