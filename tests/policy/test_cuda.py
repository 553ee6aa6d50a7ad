import pytest
import torch

from wmpo.policy import load_policy


@pytest.mark.gpu
def test_tiny_policy_on_cuda_matches_cpu(tiny_dir, frames):
    cpu = load_policy(tiny_dir, "square_d0_300_demos")
    gpu = load_policy(tiny_dir, "square_d0_300_demos", device="cuda")
    prompts = ["stack_three"] * len(frames)
    inputs = cpu.prepare(frames, prompts)
    cuda_inputs = gpu.prepare(frames, prompts)
    torch.testing.assert_close(cuda_inputs["pixel_values"].cpu(), inputs["pixel_values"], atol=1e-5, rtol=0)
    with torch.no_grad():
        expected = cpu.model(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
        got = gpu.model(cuda_inputs["pixel_values"], cuda_inputs["input_ids"], cuda_inputs["attention_mask"])
    torch.testing.assert_close(got.cpu(), expected, atol=1e-3, rtol=1e-3)
    out = gpu.predict(frames, prompts, generator=torch.Generator(device="cuda").manual_seed(0))
    assert out.responses.device.type == "cuda" and out.actions.shape == (len(frames), 8, 7)
