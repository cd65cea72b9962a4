"""Guiding Giants (weighted activation steering): a headless smoke run, a run with other valid values in bf16, the methods on a bf16 tiny Llama, and the verdict rules fed noise."""
import pytest
import torch

import steerlab as sl
from steerlab.methods import guiding_giants as gg

SLUG = "guiding_giants"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_train=8, n_eval=4, input_layers=[-2, -1], hidden_dim=16, epochs=2, direction="dim", dim_layer=10,
                    scalar="sigmoid", answer_tokens=4, max_new_tokens=4, n_generate=1)  # cheap, other than the defaults
FIGURES = ("selectivity", "controller_outputs")


@pytest.mark.notebook
def test_guiding_giants_table_and_controls(smoke_run):
    results = smoke_run.results
    table = smoke_run.paper_table(FIGURES)
    assert [c.split(":")[0] for c in table.claim] == ["C1a", "C1b", "C1c", "C2a", "C2b", "C3a", "C3b", "C3c", "C4a", "C4b", "C4c", "C5"]
    assert set(table.verdict[table.claim.str.startswith(("C1b", "C1c"))]) == {"not run"}  # missing data, not a scale limit
    assert results["n_controls"] >= 8 and results["n_refusal_openings"] >= 1
    assert results["base_gain"] == 0                                 # base against itself: no change, exactly


@pytest.mark.notebook
def test_guiding_giants_other_values_bf16(other_run):
    other_run.paper_table(FIGURES)


def test_methods_on_a_bf16_tiny_llama():
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model("llama", vocab_size=len(tokenizer)).to(torch.bfloat16)
    u = gg.embedding_direction(net, tokenizer)
    assert u.dtype == torch.float32 and u.shape == (64,) and abs(u.norm().item() - 1) < 1e-5
    refusals = gg.disjoint_refusals(tokenizer)
    used = set(gg.phrase_tokens(tokenizer, [p for group in gg.opening_phrases().values() for p in group]))
    assert refusals and not used & set(gg.phrase_tokens(tokenizer, refusals))
    prompts = sl.format_prompts(tokenizer, ["Describe a chair.", "Name a colour."])
    acts = sl.capture(net, tokenizer, prompts, [f"blocks.{l}.hook_resid_post" for l in range(3)], positions="last")
    x = torch.cat(list(acts.values()), -1)  # (2, 3·64) in the model's dtype
    controller = gg.Controller(x.shape[1], 3, hidden=8)
    gg.train_controller(controller, x[:1], x[1:], epochs=1)
    coeffs = controller.coefficients(x, torch.ones(3))
    assert coeffs.shape == (2, 3) and coeffs.dtype == torch.float32 and torch.isfinite(coeffs).all()
    gated = gg.gated_patch(coeffs.mean(0), controller(x)[0], controller(x)[0], "step")
    assert gated.shape == (2, 3) and gated.dtype == torch.float32
    plans = [None, gg.was_plan(u, coeffs[1])]
    logps = sl.continuation_logprobs(net, tokenizer, prompts, refusals[:1] * 2, plans=plans, positions=gg.FROM_LAST_PROMPT_TOKEN)
    assert all(torch.isfinite(l.float()).all() for l in logps)
    unsteered = sl.continuation_logprobs(net, tokenizer, prompts[:1], refusals[:1])[0]
    torch.testing.assert_close(logps[0], unsteered)  # a row without a plan is the unsteered model
    nulls = gg.shuffled_label_controllers(x[:1].repeat(4, 1), x[1:].repeat(4, 1), 3, 8, n=8, epochs=1)
    assert len(nulls) == 8


def test_scale_auroc_against_shuffled_labels_does_not_pass_noise():
    "The C2a rule: a controller's held-out AUROC against controllers trained on shuffled labels, on inputs without a class signal."
    g = torch.Generator().manual_seed(0)
    passed = 0
    for draw in range(100):
        x_train, x_eval = torch.randn(16, 6, generator=g), torch.randn(8, 6, generator=g)
        controller = gg.Controller(6, 2, hidden=8)
        gg.train_controller(controller, x_train[:8], x_train[8:], epochs=3, lr=1e-2, seed=draw)
        nulls = gg.shuffled_label_controllers(x_train[:8], x_train[8:], 2, 8, n=8, seed=draw, epochs=3, lr=1e-2)
        with torch.no_grad():
            s, null_scores = controller(x_eval)[0], [c(x_eval)[0] for c in nulls]
        effect = sl.bootstrap(sl.auroc, s[:4], s[4:], seed=draw, n_boot=300)
        null = sl.Null.from_draws([sl.auroc(n[:4], n[4:]) for n in null_scores], "shuffled labels")
        passed += sl.decide(effect, null)[0] == "reproduced"
    assert passed <= 5


def test_selectivity_against_a_baseline_does_not_pass_noise():
    "The C3 rule: WAS's selectivity minus a baseline's on the same prompts, against no difference, when both are noise."
    g = torch.Generator().manual_seed(1)
    passed = 0
    for draw in range(200):
        diff_harmful, diff_benign = torch.randn(16, generator=g), torch.randn(16, generator=g)
        effect = sl.bootstrap(gg.selectivity, diff_harmful, diff_benign, seed=draw, n_boot=300)
        passed += sl.decide(effect, sl.Null.fixed(0.0, "no difference"), proxy=True)[0] in ("reproduced", "same direction")
    assert passed <= 10
