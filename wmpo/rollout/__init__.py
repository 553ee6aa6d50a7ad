"""Rollouts of the policy: imagined in the world model, simulated for the GRPO baseline, greedy real evaluation and
the real-rollout budget; every batch recorded as :class:`~wmpo.rollout.trajectories.Trajectories`."""
