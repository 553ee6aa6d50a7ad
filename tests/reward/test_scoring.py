import torch

from wmpo.reward import IncrementalScorer, build_reward_model, decide, score_video, score_windows
from wmpo.reward.scoring import window_ends


def test_window_ends_follow_min_steps():
    assert window_ends(185) == list(range(108, 186))
    assert len(window_ends(185)) == 78 and len(window_ends(321)) == 214  # square, stack_three
    assert window_ends(100) == []


def test_decide_takes_the_earliest_window_or_the_last_frame():
    scores = torch.tensor([0.1, 0.7, 0.95, 0.99])
    assert decide(scores, 0.9, num_frames=111, window=8, min_steps=100).finish_step == 109  # end 110 → frame 109
    late = decide(scores, 0.999, num_frames=111)
    assert (late.complete, late.finish_step) == (False, 110)


def test_a_window_ending_at_the_last_frame_decides_only_when_asked():
    scores = torch.tensor([0.1, 0.2, 0.3, 0.95])  # windows ending (exclusive) at 108 … 111 of a 111-frame video
    released = decide(scores, 0.9, num_frames=111)
    assert (released.complete, released.finish_step) == (False, 110)
    counted = decide(scores, 0.9, num_frames=111, count_last=True)
    assert (counted.complete, counted.finish_step) == (True, 110)
    earlier = decide(torch.tensor([0.1, 0.2, 0.95, 0.95]), 0.9, num_frames=111)
    assert (earlier.complete, earlier.finish_step) == (True, 109)


def test_incremental_scoring_equals_whole_video_scoring():
    torch.manual_seed(0)
    model = build_reward_model("tiny")
    generator = torch.Generator().manual_seed(1)
    for trial in range(3):
        videos = torch.randint(0, 256, (3, 41, 48, 48, 3), dtype=torch.uint8, generator=generator)
        scores = [score_windows(model, v, window=8, min_steps=12) for v in videos]
        pooled = torch.cat(scores)
        for quantile in (0.1, 0.5, 0.9, 1.01):
            threshold = float(pooled.quantile(min(quantile, 1.0))) + (1.0 if quantile > 1 else 0.0)
            for count_last in (False, True):
                full = [score_video(model, v, threshold, window=8, min_steps=12, count_last=count_last)
                        for v in videos]
                scorer = IncrementalScorer(model, threshold, batch=3, num_frames=41, window=8, min_steps=12,
                                           batch_size=5, count_last=count_last)
                scorer.update(videos[:, :1])
                for start in range(1, 41, 8):
                    active = [row for row, done in enumerate(scorer.done) if not done]
                    if active:
                        scorer.update(videos[active, start : start + 8], rows=active)
                incremental = scorer.decisions()
                for row, (a, b) in enumerate(zip(full, incremental)):
                    if a.complete:
                        assert (a.complete, a.finish_step) == (b.complete, b.finish_step), (trial, quantile, row)
                    else:
                        assert not b.complete and b.finish_step == 40


def test_the_incremental_scorer_ignores_a_success_at_the_horizon_by_default():
    torch.manual_seed(0)
    model = build_reward_model("tiny")
    video = torch.randint(0, 256, (1, 25, 48, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    last_score = float(score_windows(model, video[0], window=8, min_steps=12)[-1])
    for count_last, expected in ((False, False), (True, True)):
        scorer = IncrementalScorer(model, last_score, batch=1, num_frames=25, window=8, min_steps=17,
                                   count_last=count_last)
        scorer.update(video[:, :1])
        scorer.update(video[:, 1:25])
        decision = scorer.decisions()[0]
        assert (decision.complete, decision.finish_step) == (expected, 24)


def test_best_scores_are_the_highest_deciding_window_of_each_video():
    torch.manual_seed(0)
    model = build_reward_model("tiny")
    videos = torch.randint(0, 256, (2, 33, 48, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    for count_last in (False, True):
        scorer = IncrementalScorer(model, float("inf"), batch=2, num_frames=33, window=8, min_steps=12,
                                   count_last=count_last)
        assert scorer.best_scores() == [0.0, 0.0]
        scorer.update(videos[:, :1])
        for start in range(1, 33, 8):
            scorer.update(videos[:, start : start + 8])
        for video, best in zip(videos, scorer.best_scores()):
            scores = score_windows(model, video, window=8, min_steps=12)
            deciding = scores if count_last else scores[:-1]  # the window ending at the horizon
            assert best == float(deciding.max())
