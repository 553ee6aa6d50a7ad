import pytest
import torch

from wmpo.workers.offload import move_optimizer_state, optimizer_on


def stepped(device: str = "cpu", offload: bool = False, steps: int = 3):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.01)
    for _ in range(steps):
        with optimizer_on(optimizer, torch.device(device), offload):
            model(torch.ones(2, 4, device=device)).square().sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    return model, optimizer


def test_moving_states_moves_the_moments_and_keeps_the_step_counters():
    _, optimizer = stepped()
    move_optimizer_state(optimizer, "meta")
    for state in optimizer.state.values():
        assert state["exp_avg"].device.type == "meta" and state["exp_avg_sq"].device.type == "meta"
        assert state["step"].device.type == "cpu" and float(state["step"]) == 3.0


@pytest.mark.gpu
def test_offloaded_states_live_in_cpu_memory_between_updates_and_train_identically():
    model, optimizer = stepped("cuda", offload=True)
    reference, _ = stepped("cuda", offload=False)
    assert all(s["exp_avg"].device.type == "cpu" for s in optimizer.state.values())
    for a, b in zip(model.parameters(), reference.parameters()):
        assert a.device.type == "cuda" and torch.equal(a, b)
