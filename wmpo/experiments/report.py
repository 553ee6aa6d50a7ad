"""What the small-scale experiment writes: Wilson intervals, results.json, report.md and success.png."""

from __future__ import annotations

import json
import math
from pathlib import Path


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion; it always contains the observed proportion (at 0 or all
    successes the closed form's bound equals it only up to rounding)."""
    if trials <= 0:
        raise ValueError("a Wilson interval needs at least one trial")
    p = successes / trials
    denominator = 1.0 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return min(p, max(0.0, center - half)), max(p, min(1.0, center + half))


def _auc_text(outcomes: dict) -> str:
    from wmpo.fidelity import ranking_auc

    auc = ranking_auc(outcomes["scores"], outcomes["real"])
    return "n/a (one outcome only)" if auc is None else f"{auc:.2f}"


def _threshold_origin(outcomes: dict, results: dict) -> str:
    if outcomes["chosen_on"] != "replays":
        return f"chosen on {outcomes['chosen_on']}"
    if outcomes["threshold"] == results["reward_model"]["threshold"]:
        return "the real-video threshold: no threshold beats chance on the replays"
    return "chosen on replays"


def arm_result(successes: list[bool], real_trajectories: int) -> dict:
    """success_rate, episodes, ci95 and the real trajectories the arm consumed."""
    wins, count = int(sum(successes)), len(successes)
    low, high = wilson_interval(wins, count)
    return {"success_rate": wins / count, "episodes": count, "successes": wins, "ci95": [low, high],
            "real_trajectories_used": real_trajectories}


def write_report(output: Path, results: dict, settings: dict) -> None:
    """report.md: the arms' table, the fidelity numbers, the time per stage and the settings."""
    lines = [f"# Small-scale WMPO experiment (seed {settings['seed']})", "",
             "| arm | real success | 95% Wilson CI | episodes | real trajectories used |", "|---|---|---|---|---|"]
    for arm, row in results["arms"].items():
        low, high = row["ci95"]
        lines.append(f"| {arm} | {row['success_rate']:.3f} | [{low:.3f}, {high:.3f}] | {row['episodes']} | "
                     f"{row['real_trajectories_used']} |")
    agreement = results["world_model_agreement"]
    reward = results["reward_model"]
    replay = results["world_model_open_loop"]
    outcomes = results["world_model_replay_outcomes"]
    lines += ["", f"World model, greedy base policy on the evaluation states: imagined success "
              f"{agreement['imagined_success_rate']:.3f} vs real {agreement['real_success_rate']:.3f}, per-state "
              f"agreement {agreement['agreement']:.3f} (confusion: {json.dumps(agreement['confusion'])}).",
              f"World model, open-loop replay of {replay['episodes']} held-out budget episodes with their own actions: "
              f"PSNR {replay['psnr']:.2f} dB vs {replay['copy_first_psnr']:.2f} dB for repeating the first frame "
              f"(per chunk: {', '.join(f'{v:.1f}' for v in replay['psnr_per_chunk'])}).",
              f"World model + reward model judging those replays: their scores rank real successes above real "
              f"failures with AUC {_auc_text(outcomes)}; at the threshold imagination uses "
              f"({outcomes['threshold']:.3f}, {_threshold_origin(outcomes, results)}): imagined success "
              f"{outcomes['imagined_success_rate']:.3f} vs real {outcomes['real_success_rate']:.3f}, agreement "
              f"{outcomes['agreement']:.3f} (confusion: {json.dumps(outcomes['confusion'])}); at the real-video "
              f"threshold: agreement {outcomes['at_real_video_threshold']['agreement']:.3f}.",
              f"Reward model on held-out real episodes: precision {reward['precision']:.3f}, recall "
              f"{reward['recall']:.3f} at threshold {reward['threshold']:.3f}.", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in results["stage_seconds"].items()]
    total = sum(results["stage_seconds"].values())
    lines += [f"| total before the evaluation stage (timed in stages.json) | {total:.0f} |", "",
              f"Machine: {results['machine']}", "",
              "## Settings", "", "```json", json.dumps(settings, indent=2), "```", ""]
    (output / "report.md").write_text("\n".join(lines))


BASELINE_STYLES = {"base": ("gray", "--", "base policy"), "grpo_sim": ("tab:red", ":", "GRPO in simulator"),
                   "dpo": ("tab:green", "-.", "DPO on the real budget")}


def plot_success(path: Path, curves: dict[str, list[dict]], arms: dict) -> None:
    """Real success of each learning curve's checkpoints (label → points) against the iteration, with the base
    policy and the baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        iterations = [point["iteration"] for point in curve]
        axis.plot(iterations, [point["success_rate"] for point in curve], marker="o", label=label)
        axis.fill_between(iterations, [point["ci95"][0] for point in curve], [point["ci95"][1] for point in curve],
                          alpha=0.2)
    for arm, (color, style, label) in BASELINE_STYLES.items():
        if arm in arms:
            axis.axhline(arms[arm]["success_rate"], color=color, linestyle=style, label=label)
    axis.set_xlabel("WMPO iteration")
    axis.set_ylabel("real success rate")
    axis.set_ylim(0, 1)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
