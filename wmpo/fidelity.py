"""How well the learned world model and reward model stand in for the simulator, measured on real outcomes (the
small-scale experiment's fidelity numbers and the trainer's monitors)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from opensora.datasets.shards import Episode, EpisodeRef
from opensora.datasets.windows import normalize_actions
from opensora.world_model import WorldModel
from wmpo.imagination import ImaginedEnv
from wmpo.policy.policy import VLAPolicy
from wmpo.rollout.imagined import policy_view


@torch.no_grad()
def imagine_greedy(policy: VLAPolicy, env: ImaginedEnv, first_frames: torch.Tensor, instruction: str, seed: int,
                   batch_size: int = 16, jpeg_resize: bool = False) -> np.ndarray:
    """Imagined success (bool per frame) of the greedy policy from each first frame (N, H, W, 3); ``jpeg_resize`` as
    in :func:`~wmpo.rollout.imagined.imagine_groups`."""
    outcomes = []
    for start in range(0, len(first_frames), batch_size):
        rows = first_frames[start : start + batch_size]
        frame = env.reset(rows, [seed * 100_003 + start + i for i in range(len(rows))])
        done = torch.zeros(len(rows), dtype=torch.bool)
        while not bool(done.all()):
            seen = policy_view(frame, policy.image_size, jpeg_resize)
            out = policy.predict(seen, [instruction] * len(rows), do_sample=False)
            step = env.step(out.normalized_actions.float().cpu())
            frame, done = env.last_frames, step.done
        outcomes.append(step.success.numpy())
    return np.concatenate(outcomes)


def _whole_chunks(actions: np.ndarray, chunk: int) -> np.ndarray:
    """Actions (T, 7) extended to whole chunks by holding the last one."""
    missing = -len(actions) % chunk
    return np.concatenate([actions, np.repeat(actions[-1:], missing, axis=0)])


@torch.no_grad()
def replay_scores(env: ImaginedEnv, episodes: list[EpisodeRef], q01: np.ndarray, q99: np.ndarray,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The world model replays each real episode's own executed actions from its first frame; returns the reward
    model's highest deciding window score of each replay and the simulator's outcome of those same actions.

    The replay runs with the decision switched off, so imagined success at threshold t is exactly score ≥ t (the
    frames before a decision do not depend on it). Unlike the policy agreement, the actions are fixed: a disagreement
    is the world model's or the reward model's.

    A real episode usually ends inside a chunk (at its success, or some recorded steps after it); the replay's last
    chunk holds the last executed action for the rest of the chunk, so the end is imagined instead of cut off.
    """
    scores, real = [], []
    chunk = env.wm.spec.chunk
    threshold, env.threshold = env.threshold, math.inf
    try:
        for number, episode in enumerate(episodes):
            actions = normalize_actions(np.asarray(episode.actions.open(), np.float32), q01, q99)
            if len(actions) == 0:
                continue
            actions = _whole_chunks(actions, chunk)
            chunks = len(actions) // chunk
            env.reset(torch.from_numpy(np.array(episode.video.open()[:1])), [seed * 100_003 + number])
            for c in range(chunks):
                step = env.step(torch.from_numpy(actions[c * chunk : (c + 1) * chunk])[None])
                if bool(step.done[0]):
                    break
            scores.append(env.best_scores()[0])
            real.append(bool(episode.meta["complete"]))
    finally:
        env.threshold = threshold
    if not real:
        raise ValueError("no episode is long enough for one chunk of replay")
    return np.asarray(scores, np.float64), np.asarray(real, bool)


def balanced_threshold(scores: np.ndarray, real: np.ndarray, prefer: float) -> float:
    """The decision threshold on ``scores`` with the highest balanced accuracy (the mean of the recall of real
    successes and of real failures), among the lowest score and the midpoints between distinct scores; ties go to
    the candidate nearest ``prefer``. ``prefer`` itself is returned when ``real`` holds a single class or when no
    candidate beats chance (balanced accuracy 0.5): such scores carry no signal, and their best candidate would be
    the lowest score, which accepts everything."""
    scores, real = np.asarray(scores, np.float64), np.asarray(real, bool)
    if real.all() or not real.any():
        return float(prefer)
    distinct = np.unique(scores)
    candidates = np.concatenate([distinct[:1], (distinct[1:] + distinct[:-1]) / 2])
    accepted = scores[None, :] >= candidates[:, None]
    balanced = (accepted[:, real].mean(1) + (~accepted[:, ~real]).mean(1)) / 2
    if balanced.max() <= 0.5 + 1e-9:
        return float(prefer)
    best = candidates[np.isclose(balanced, balanced.max())]
    return float(best[np.argmin(np.abs(best - prefer))])


def ranking_auc(scores, real) -> float | None:
    """How often a real success scores above a real failure (ties count half): 0.5 is chance, 1 a perfect ranking;
    None with a single class."""
    scores, real = np.asarray(scores, np.float64), np.asarray(real, bool)
    if real.all() or not real.any():
        return None
    above = scores[real][:, None] - scores[~real][None, :]
    return float(((above > 0) + 0.5 * (above == 0)).mean())


def agreement(imagined: np.ndarray, real: np.ndarray) -> dict:
    """Per-state agreement of imagined and real success, and the confusion counts."""
    imagined, real = np.asarray(imagined, bool), np.asarray(real, bool)
    return {
        "imagined_success_rate": float(imagined.mean()),
        "real_success_rate": float(real.mean()),
        "agreement": float((imagined == real).mean()),
        "confusion": {
            "imagined_success_real_success": int((imagined & real).sum()),
            "imagined_success_real_failure": int((imagined & ~real).sum()),
            "imagined_failure_real_success": int((~imagined & real).sum()),
            "imagined_failure_real_failure": int((~imagined & ~real).sum()),
        },
        "states": int(len(real)),
    }


def _episode_arrays(episode: Episode | EpisodeRef) -> tuple[np.ndarray, np.ndarray, int]:
    """Video, actions and finish_step of an episode in memory or in a shard."""
    if isinstance(episode, Episode):
        return episode.video, episode.actions, int(episode.meta["finish_step"])
    return np.asarray(episode.video.open()), np.asarray(episode.actions.open()), episode.finish_step


@torch.no_grad()
def replay_video(wm: WorldModel, first_frame: np.ndarray, normalized_actions: np.ndarray, seed: int) -> torch.Tensor:
    """The world model imagines an episode from its first frame (H, W, 3) with its normalized executed actions (T, 7),
    chunk after chunk, never seeing a real frame again; a partial last chunk holds the last action to the chunk's end.
    Returns uint8 frames (1 + chunks * chunk, H, W, 3), the first frame included."""
    chunk = wm.spec.chunk
    actions = torch.from_numpy(_whole_chunks(normalized_actions, chunk).astype(np.float32))
    chunks = len(actions) // chunk
    generator = [torch.Generator(device=wm.device).manual_seed(seed)]
    first = torch.from_numpy(np.array(first_frame))[None]
    context = wm.initial_context(first, generator)
    frames = [first]
    for c in range(chunks):
        latents = wm.predict(context, actions[None, c * chunk : (c + 1) * chunk], generator)
        frames.append(wm.decode(latents)[0].cpu())
        context = wm.next_context(context, latents)
    return torch.cat(frames)


def replayed_episodes(wm: WorldModel, episodes: list[EpisodeRef], q01: np.ndarray, q99: np.ndarray,
                      seed: int) -> list[Episode]:
    """Each real episode as the world model imagines it from its executed actions: the imagined video beside the real
    actions and metadata (``complete`` and ``finish_step`` are the simulator's), so a reward model trained on them
    learns to judge imagined videos by real outcomes."""
    replays = []
    for number, episode in enumerate(episodes):
        video, actions, _ = _episode_arrays(episode)
        if len(actions) == 0:
            continue
        imagined = replay_video(wm, video[0], normalize_actions(np.asarray(actions, np.float32), q01, q99),
                                seed * 100_003 + number)
        replays.append(Episode(f"replay_{episode.key}", imagined.numpy(), np.asarray(actions),
                               {**episode.meta, "replay_of": episode.key}))
    return replays


@torch.no_grad()
def replay_open_loop(wm: WorldModel, episodes: list[Episode | EpisodeRef], q01: np.ndarray, q99: np.ndarray,
                     seed: int, strip_path: Path | None = None) -> dict:
    """Imagine real episodes from their first frame with their executed actions (:func:`replay_video`, whole chunks
    only); PSNR per chunk against the real frames and against repeating the first frame.

    This is what imagination asks of the world model (the validation windows start from real context instead).
    """
    errors: dict[int, list[float]] = {}
    copy_errors: dict[int, list[float]] = {}
    strips = []
    for number, episode in enumerate(episodes):
        video, actions, steps = _episode_arrays(episode)
        chunks = steps // wm.spec.chunk
        if chunks == 0:
            continue
        video = torch.from_numpy(np.array(video))
        actions = normalize_actions(np.asarray(actions[: chunks * wm.spec.chunk], np.float32), q01, q99)
        imagined = replay_video(wm, video[0].numpy(), actions, seed * 100_003 + number)[1:].float()
        real = video[1 : 1 + len(imagined)].float()
        first = video[0].float()
        for c in range(chunks):
            rows = slice(c * wm.spec.chunk, (c + 1) * wm.spec.chunk)
            errors.setdefault(c, []).append(float((imagined[rows] - real[rows]).pow(2).mean()))
            copy_errors.setdefault(c, []).append(float((first - real[rows]).pow(2).mean()))
        if len(strips) < 4:
            last = list(range(wm.spec.chunk - 1, len(real), wm.spec.chunk))  # the frames the policy would see
            strips.append(np.concatenate([np.concatenate(list(real[last].byte().numpy()), 1),
                                          np.concatenate(list(imagined[last].byte().numpy()), 1)], 0))
    if not errors:
        raise ValueError("no episode is long enough for one chunk of open-loop replay")
    to_psnr = lambda values: float(10 * np.log10(255.0**2 / max(np.mean(values), 1e-10)))  # noqa: E731
    if strip_path is not None:
        import imageio.v3 as iio

        width = max(strip.shape[1] for strip in strips)
        padded = [np.pad(strip, ((0, 4), (0, width - strip.shape[1]), (0, 0))) for strip in strips]
        strip_path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(strip_path, np.concatenate(padded, 0))
    return {
        "episodes": len(errors[0]),
        "psnr_per_chunk": [to_psnr(errors[c]) for c in sorted(errors)],
        "copy_first_psnr_per_chunk": [to_psnr(copy_errors[c]) for c in sorted(copy_errors)],
        "psnr": to_psnr([e for c in errors for e in errors[c]]),
        "copy_first_psnr": to_psnr([e for c in copy_errors for e in copy_errors[c]]),
    }


def precision_recall(predicted: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """Precision and recall of ``predicted`` successes against ``real`` ones (NaN where undefined)."""
    predicted, real = np.asarray(predicted, bool), np.asarray(real, bool)
    hits = float((predicted & real).sum())
    precision = hits / predicted.sum() if predicted.any() else float("nan")
    recall = hits / real.sum() if real.any() else float("nan")
    return float(precision), float(recall)


@torch.no_grad()
def monitor(policy: VLAPolicy, env: ImaginedEnv, instruction: str, first_frames: torch.Tensor, results: list,
            seed: int, jpeg_resize: bool, replay_episodes: int, strip_path: Path | None) -> dict[str, float]:
    """Fidelity of the learned models at one real evaluation of the current policy (``results``: its episodes,
    frames recorded, on the states whose first frames are ``first_frames``).

    - the greedy policy imagined from the same first frames: imagined vs real success, per-state agreement and the
      confusion counts;
    - the reward model on the real evaluation videos, judged against the simulator's success (a real episode ends at
      its success, so the window ending at the last frame counts);
    - open-loop drift: the world model replays the first ``replay_episodes`` real episodes' actions from their
      first frame; PSNR per chunk against the real frames, next to repeating the first frame (strip at
      ``strip_path``: real frames over imagined ones at each chunk's last frame).
    """
    from wmpo.reward.scoring import score_video
    from wmpo.rollout.collection import episode_record

    real = np.array([r.success for r in results], bool)
    imagined = imagine_greedy(policy, env, first_frames[: len(results)], instruction, seed, jpeg_resize=jpeg_resize)
    states = agreement(imagined, real)
    metrics = {"fidelity/imagined_success": states["imagined_success_rate"],
               "fidelity/real_success": states["real_success_rate"], "fidelity/agreement": states["agreement"],
               **{f"fidelity/{name}": float(count) for name, count in states["confusion"].items()}}
    judged = [score_video(env.reward_model, torch.from_numpy(r.frames), env.threshold, min_steps=env.min_steps,
                          count_last=True).complete for r in results]
    metrics["fidelity/rm_precision"], metrics["fidelity/rm_recall"] = precision_recall(np.array(judged), real)
    chunk = env.wm.spec.chunk
    replayed = [episode_record(r, f"state{r.state_id}") for r in results if r.finish_step >= chunk][:replay_episodes]
    if replayed:
        drift = replay_open_loop(env.wm, replayed, policy.stats["q01"], policy.stats["q99"], seed, strip_path)
        metrics.update({"fidelity/open_loop_psnr": drift["psnr"],
                        "fidelity/open_loop_psnr_last_chunk": drift["psnr_per_chunk"][-1],
                        "fidelity/open_loop_copy_first_psnr": drift["copy_first_psnr"]})
    return metrics
