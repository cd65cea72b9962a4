"""Steer2Edit notebook: a headless smoke run and the mechanism it must show."""
import pandas as pd
import pytest

SLUG = "steer2edit"  # the notebook the shared smoke_run fixture runs


@pytest.mark.notebook
def test_weight_edits_equal_their_activation_form_and_undo_exactly(smoke_run):
    results = smoke_run.results
    assert results["safety_max_dev_weight_vs_hooks"] < 1e-3      # fp32 through 30 layers, over the whole vocabulary
    assert results["safety_edit_logit_effect"] > 1e-2            # ... while the edit itself does move the logits
    assert results["safety_undo_exact"] is True


@pytest.mark.notebook
def test_attribution_is_sparse_and_follows_the_scores(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    assert 0 < results["safety_best_component_share"] < 0.05
    edits = pd.read_csv(folder / "results" / "edits.csv")
    heads = edits[edits.kind == "head"]
    assert (heads.lam * heads.score > 0).all()                   # λ takes the sign of the head's score g
    scores = pd.read_csv(folder / "results" / "head_scores.csv")
    edited, untouched = scores[scores.lam != 0], scores[scores.lam == 0]
    assert edited.score.abs().min() > untouched.score.abs().max()  # edited exactly where |g| passes the threshold ρα


@pytest.mark.notebook
def test_edits_and_steering_move_refusal(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    assert results["safety_min_edit_lift"] > 0                   # every edit of the grid raises the refusal log-odds
    assert results["safety_strongest_lift"] > 2                  # the strongest by nats, not noise
    conditions = pd.read_csv(folder / "results" / "conditions.csv")
    steering = conditions[conditions.method.isin(["base", "steering"])].sort_values("alpha")
    assert steering.attribute.is_monotonic_increasing             # global steering moves refusal ...
    assert steering.utility_loss.is_monotonic_increasing          # ... and costs utility the harder it pushes
    assert results["safety_steer_max_attribute"] > results["safety_base_attribute"] + 5
    randoms = conditions[conditions.method == "random edit"].set_index("setting")
    edits = conditions[conditions.method == "steer2edit"].set_index("setting")
    assert (randoms.edit_norm == edits.edit_norm).all()           # the controls have the edits' ‖ΔW‖
    assert edits.matched_gain.notna().any()                       # some edit sits inside the steering curve's range


@pytest.mark.notebook
def test_figures_and_comparison_table_exist(smoke_run):
    table = smoke_run.paper_table(("tradeoff", "attribution"))
    assert len(table) == 6 and table.verdict[table.claim.str.startswith("C3")].item() == "reproduced"
