"""The VideoMAE success classifier that rewards imagined trajectories."""

from wmpo.reward.model import build_reward_model, load_reward_model, reward_config, save_reward_model
from wmpo.reward.preprocessing import preprocess_clips, preprocess_frames
from wmpo.reward.scoring import Decision, IncrementalScorer, decide, score_video, score_windows

__all__ = [
    "Decision",
    "IncrementalScorer",
    "build_reward_model",
    "decide",
    "load_reward_model",
    "preprocess_clips",
    "preprocess_frames",
    "reward_config",
    "save_reward_model",
    "score_video",
    "score_windows",
]
