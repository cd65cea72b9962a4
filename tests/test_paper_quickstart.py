"The quickstart notebook runs headless with its defaults and with other valid values; its methods run on a bf16 tiny model; its verdict rule does not pass noise."
import pytest
import torch

import steerlab as sl
from steerlab.methods import quickstart as qs

SLUG = "quickstart"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(layer=8, n_pairs=12, n_eval=4, strengths=[0.1, 0.25], max_new_tokens=6, n_random=8)  # cheap, other than the defaults


@pytest.mark.notebook
def test_quickstart_runs_with_a_computed_table(smoke_run):
    results, manifest = smoke_run.results, smoke_run.manifest
    assert 0 < results["vector_to_site_norm"] < 1
    assert results["peak_strength"] > 0  # chosen among the candidate strengths, on validation
    assert results["n_random_directions"] >= 8
    table = smoke_run.paper_table(("strength_sweep",))
    assert list(table.claim.str[:2]) == ["C1", "C2", "C3"]
    assert len(manifest["models"]) == 1 and manifest["models"][0]["weights_sha256"]  # the exact weights used


@pytest.mark.notebook
def test_quickstart_other_values_bf16(other_run):
    other_run.paper_table(("strength_sweep",))


def test_methods_on_a_bf16_tiny_llama():
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model("llama", vocab_size=len(tokenizer)).to(torch.bfloat16)
    prompts = ["Describe a chair.", "Name a colour."]
    v = sl.Vector(torch.randn(64, dtype=torch.bfloat16), site="blocks.1.hook_resid_post", norm_ref=5.0)
    plan = {"blocks.1.hook_resid_post": sl.Add(v, 0.2, relative=True)}
    margins = qs.sweep_margins(net, tokenizer, prompts, {"base": None, "steered": plan})
    assert set(margins) == {"base", "steered"}
    for m in margins.values(): assert m.shape == (2,) and m.dtype == torch.float32 and torch.isfinite(m).all()
    torch.testing.assert_close(margins["base"], qs.opening_margins(net, tokenizer, prompts))  # shared batches change nothing
    torch.testing.assert_close(qs.signed_effect(margins["steered"], margins["base"]), (margins["steered"] - margins["base"]) / 2)


def test_direction_claim_does_not_pass_noise():
    g = torch.Generator().manual_seed(0)
    passed = 0
    for draw in range(200):
        along, controls = torch.randn(6, generator=g), list(torch.randn(8, 6, generator=g))
        effect, null = qs.direction_claim(along, controls, "noise", seed=draw)
        passed += sl.decide(effect, null)[0] == "reproduced"
    assert passed <= 0.05 * 200
