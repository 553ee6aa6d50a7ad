import torch

from opensora.schedulers.rflow import RFlow, RFlowConfig


class ConstantVelocity(torch.nn.Module):
    """A stand-in model whose velocity is a fixed tensor, for checking the integrator."""

    def __init__(self, velocity):
        super().__init__()
        self.velocity = velocity

    def forward(self, x, timestep, actions, x_mask=None):
        return torch.cat([self.velocity.expand(-1, -1, x.shape[2], -1, -1)] * 2, dim=1)

    def encode_context(self, context):
        return []

    def forward_targets(self, x, timestep, actions, caches):
        return torch.cat([self.velocity.expand(-1, -1, x.shape[2], -1, -1)] * 2, dim=1)

def test_noise_schedule_and_transform():
    flow = RFlow()
    x0, noise = torch.ones(2, 1, 1), torch.zeros(2, 1, 1)
    noised = flow.add_noise(x0, noise, torch.tensor([15.0, 1000.0])).flatten()
    torch.testing.assert_close(noised, torch.tensor([0.985, 0.0]))
    t = torch.tensor([100.0, 500.0, 900.0])
    torch.testing.assert_close(flow.timestep_transform(t, 256, 256), t)  # r = 0.5 · sqrt(4) = 1
    r = (512 * 512 / 512**2) ** 0.5 * 2
    torch.testing.assert_close(flow.timestep_transform(t, 512, 512), r * (t / 1000) / (1 + (r - 1) * t / 1000) * 1000)

def test_euler_sampler_integrates_exactly_from_noise_to_zero_time():
    flow = RFlow(RFlowConfig(num_sampling_steps=7))
    steps = flow.sampling_timesteps(1, 256, 256, "cpu")
    assert steps[0].item() == 1000.0 and len(steps) == 7
    velocity = torch.randn(2, 4, 1, 3, 3)
    noise = torch.randn(2, 4, 8, 3, 3)
    context = torch.randn(2, 4, 4, 3, 3)
    for use_cache in (True, False):
        out = flow.sample(ConstantVelocity(velocity), context, torch.zeros(2, 8, 7), noise, 256, 256, use_cache)
        # Δt sums to 1 over the steps: z_final = noise + velocity, i.e. x0 when velocity = x0 − noise.
        torch.testing.assert_close(out, noise + velocity)

def test_training_loss_covers_target_frames_only(tiny_model):
    flow = RFlow()
    x0 = torch.randn(2, 4, 12, 8, 8)
    actions = torch.rand(2, 8, 7)
    mask = torch.tensor([[False] * 4 + [True] * 8] * 2)
    # 256×256 pixels: the timestep transform is the identity
    loss = flow.training_loss(tiny_model, x0, actions, mask, 256, 256, torch.Generator().manual_seed(0))

    g = torch.Generator().manual_seed(0)
    t = torch.sigmoid(torch.randn(2, generator=g)) * 1000
    noise = torch.randn(x0.shape, generator=g)
    keep = (1 - t / 1000).view(-1, 1, 1, 1, 1)
    x_t = torch.cat([(0.985 * x0 + 0.015 * noise)[:, :, :4], (keep * x0 + (1 - keep) * noise)[:, :, 4:]], dim=2)
    velocity = tiny_model(x_t, t, actions, mask)[:, :4]
    expected = (velocity - (x0 - noise))[:, :, 4:].pow(2).mean(dim=(1, 2, 3, 4))
    torch.testing.assert_close(loss, expected)
    assert loss.shape == (2,)
