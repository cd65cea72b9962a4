"ThinkEdit notebook, smoke profile: the length direction, the short-reasoning heads, the o_proj edit's invariants, and the controls."
import numpy as np
import pytest
import torch

import steerlab as sl
from steerlab.methods.thinkedit import (end_logprobs, head_edits_plan, head_scores, head_writes, random_head_edits, think_edit,
                                        think_edit_plan, top_heads)

SLUG = "thinkedit"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_probe=16, n_eval=12, n_steer=2, max_new_tokens=32, top_k=5, steer_strength=0.05,
                    short_quantile=0.3, edited_answers="all", n_check=1)


@pytest.mark.notebook
def test_edit_removes_the_write_and_equals_its_activation_form(smoke_run):
    results = smoke_run.results
    assert results["write_before_min"] > 0
    assert results["write_after_ratio"] < 1e-4  # fp32: the heads no longer write along û
    assert results["edit_max_abs_logit_change"] > 1e-2  # the edit changes the model ...
    assert results["rank1_relative_diff"] < 1e-4  # ... exactly as the HeadRank1 plan does
    assert results["undo_restores_weights"] is True
    assert results["params_changed_outside"] == 0 and 0 < results["params_changed"] <= results["params_in_edited_blocks"]


@pytest.mark.notebook
def test_controls_were_run(smoke_run):
    results = smoke_run.results
    assert results["n_probe_short"] >= 2 and results["n_probe_long"] >= 2
    assert results["n_controls"] >= 8
    assert 0 < results["uniform_share"] < results["top_head_share"] <= 1  # the top k carry at least their count's share


@pytest.mark.notebook
def test_figures_and_paper_table(smoke_run):
    table = smoke_run.paper_table(("direction_layers", "head_scores", "edit_effect", "steering"))
    assert [c.split(":")[0] for c in table.claim] == ["C1", "C2", "C3a", "C3b", "C3c", "C4a", "C4b", "C5"]
    assert (table[table.claim.str.startswith("C3")].metric.str.startswith("identity")).all()


@pytest.mark.notebook
def test_thinkedit_other_values_bf16(other_run):
    table = other_run.paper_table(("direction_layers", "head_scores", "edit_effect", "steering"))
    assert table.verdict.iloc[-1] != "not testable at this scale"  # edited_answers: all measures C5


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # the smoke model's family and DeepSeek-R1-Distill-Qwen's
def test_method_functions_bf16(arch):
    model = sl.tiny_model(arch).to(torch.bfloat16)
    D = sl.dims(model)
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(D["n_layers"], D["d_model"], generator=g).to(torch.bfloat16)  # weight-dtype directions
    z = [torch.randn(5, D["n_heads"], D["d_head"], generator=g) for _ in range(D["n_layers"])]  # fp32 CPU captures
    writes = head_writes(model, z, dirs)
    assert writes.shape == (1, 5, D["n_layers"], D["n_heads"]) and writes.dtype == torch.float32 and writes.isfinite().all()
    scores = head_scores(model, z, dirs)
    heads = top_heads(scores, 3)
    assert len(heads) == 3 and 0 <= sl.top_share(scores, 3) <= 1
    controls = head_writes(model, z, sl.random_directions(dirs.float(), n=8)).mean(1)
    effect, null = sl.top_share_claim(lambda idx: writes[0][idx].mean(0), 5, controls, 3, "random directions")
    assert null.draws == 8 and np.isfinite([effect.value, effect.lo, effect.hi]).all()
    ids = torch.tensor([[3, 4, 5, 6, 7, 8]])
    with torch.no_grad():
        plain = model(ids).logits.float()
        with sl.steer(model, think_edit_plan(model, heads, dirs)): hooked = model(ids).logits.float()
        with think_edit(model, heads, dirs):
            edited = model(ids).logits.float()
            after = [sl.head_write_direction(model, l, h, dirs[l])[1] for l, h in heads]
    before = [sl.head_write_direction(model, l, h, dirs[l])[1] for l, h in heads]
    tol = sl.tolerance(torch.bfloat16)
    assert max(a / b for a, b in zip(after, before)) < tol
    assert (edited - hooked).abs().max() / hooked.abs().max() < tol
    assert torch.equal(model(ids).logits.float(), plain)  # undone
    draws = random_head_edits(model, heads, before, n=8)
    with torch.no_grad(), sl.steer(model, head_edits_plan(draws[0])): assert model(ids).logits.isfinite().all()
    assert torch.equal(model(ids).logits.float(), plain)


def test_end_logprobs_bf16():
    tok = sl.load_tokenizer()
    model = sl.tiny_model("qwen2", vocab_size=len(tok)).to(torch.bfloat16)
    stop, tokens = end_logprobs(model, tok, ["What is 2 + 2?", "Hi"], ["It is 4.", "Hello there"])
    assert stop.shape == tokens.shape == (2,) and np.isfinite(stop).all() and (stop < 0).all()
