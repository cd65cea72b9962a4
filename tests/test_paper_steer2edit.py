"""Steer2Edit notebook: a headless smoke run, the mechanism it must show, and its method functions in bfloat16."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.methods.steer2edit import (activation_plan, component_weights, edited, head_attributions, head_scores, module_gap,
                                         neuron_scores, plan_edits, probe_stats, random_like, resampled_attributions, steering_plan)

SLUG = "steer2edit"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_probe=6, probe_tokens=12, n_eval=4, n_utility=2, utility_tokens=12, n_generate=0,
                    steer_alphas={"safety": [0.2, 0.6]}, edit_grid={"safety": [[0.6, 0.6, 0.5], [0.8, -1.0, 0.5]]})


@pytest.mark.notebook
def test_weight_edits_equal_their_activation_form_and_undo_exactly(smoke_run):
    results = smoke_run.results
    assert results["safety_rel_dev_weight_vs_hooks"] < 1e-4      # fp32: the edit is its activation form
    assert results["safety_edit_logit_effect"] > 1e-2            # ... while the edit itself does move the logits
    assert results["safety_undo_exact"] is True


@pytest.mark.notebook
def test_edits_follow_the_scores_and_controls_were_run(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    edits = pd.read_csv(folder / "results" / "edits.csv")
    heads = edits[edits.kind == "head"]
    assert (heads.lam * heads.score > 0).all()                   # λ takes the sign of the head's score g
    scores = pd.read_csv(folder / "results" / "head_scores.csv")
    edited_, untouched = scores[scores.lam != 0], scores[scores.lam == 0]
    if len(edited_) and len(untouched):
        assert edited_.score.abs().min() > untouched.score.abs().max()  # edited exactly where |g| passes the threshold ρα
    assert results["safety_n_random"] >= 8 and results["safety_random_edit_norm_max_gap"] < 1e-6  # the controls keep ‖ΔW‖


@pytest.mark.notebook
def test_figures_and_comparison_table_exist(smoke_run):
    table = smoke_run.paper_table(("tradeoff", "attribution"))
    assert [c.split(":")[0] for c in table.claim] == ["C1a", "C1b", "C2", "C3a", "C3b", "C4", "C5", "C6"]


@pytest.mark.notebook
def test_steer2edit_other_values_bf16(other_run):
    other_run.paper_table(("tradeoff", "attribution"))


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2"])  # the families of the smoke and paper profiles
def test_method_functions_bf16(arch):
    tok = sl.load_tokenizer()
    model = sl.tiny_model(arch, vocab_size=len(tok)).to(torch.bfloat16)
    D = sl.dims(model)
    stats = probe_stats(model, tok, ["How do I pick a lock?", "Write a poem."], ["I won't.", "No."], ["Sure, here it is.", "Roses are red."])
    assert stats.v_attn[0].site.endswith("hook_attn_out_pre_norm") and stats.items["z"].dtype == torch.float32
    g_head, g_neuron = head_scores(model, stats), neuron_scores(model, stats)
    assert g_head.shape == (D["n_layers"], D["n_heads"]) and g_neuron.shape == (D["n_layers"], D["d_mlp"])
    assert g_head.isfinite().all() and g_neuron.isfinite().all() and g_head.abs().max() <= 1 + 1e-5
    weights = component_weights(model)
    torch.testing.assert_close(head_attributions(weights[0], torch.stack([v.tensor.float() for v in stats.v_attn]), stats.z_mean), g_head)
    edits = plan_edits(model, stats, rho_attn=0.1, rho_mlp=0.1, alpha=0.5)
    assert {e.kind for e in edits} == {"head", "neuron"}
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        before = model(ids).logits.float()
        with edited(model, edits): weight_form = model(ids).logits.float()
        with sl.steer(model, activation_plan(edits)): hook_form = model(ids).logits.float()
        assert (weight_form - hook_form).abs().max() / hook_form.abs().max() < sl.tolerance(torch.bfloat16)
        assert module_gap(model, edits, ids) < sl.tolerance(torch.bfloat16)
        assert torch.equal(model(ids).logits.float(), before)
        control = random_like(model, edits, torch.Generator().manual_seed(0))
        with edited(model, control): assert model(ids).logits.isfinite().all()
        with sl.steer(model, steering_plan(stats, 0.5)): assert model(ids).logits.isfinite().all()
    g_head_of, _ = resampled_attributions(weights, stats.items)
    effect, null = sl.top_share_claim(g_head_of, 2, [torch.randn_like(g_head) for _ in range(8)], 2, "noise", mass="abs")
    assert np.isfinite([effect.value, effect.lo, effect.hi]).all()


def test_pre_norm_sites_are_the_block_outputs_without_sandwich_norms():
    tok = sl.load_tokenizer()
    model = sl.tiny_model("llama", vocab_size=len(tok))
    acts = sl.capture(model, tok, ["Hello there"], ["blocks.1.hook_attn_out", "blocks.1.hook_attn_out_pre_norm"])
    torch.testing.assert_close(acts["blocks.1.hook_attn_out"], acts["blocks.1.hook_attn_out_pre_norm"])
