"ThinkEdit notebook, smoke profile: the length direction, the short-reasoning heads, and the o_proj edit's invariants."
import pytest

SLUG = "thinkedit"  # the notebook the shared smoke_run fixture runs


@pytest.mark.notebook
def test_edit_removes_the_write_and_equals_its_activation_form(smoke_run):
    results = smoke_run.results
    assert results["write_before_min"] > 0
    assert results["write_after_max"] < 1e-4 * results["write_before_min"]  # the heads no longer write along û
    assert results["edit_max_abs_logit_change"] > 1e-2  # the edit changes the model ...
    assert results["rank1_max_abs_logit_diff"] < 1e-4  # ... exactly as the HeadRank1 plan does
    assert results["undo_restores_weights"] is True
    assert 0 < results["params_changed"] <= results["params_in_edited_blocks"]
    assert results["params_changed_fraction"] < 0.01


@pytest.mark.notebook
def test_direction_heads_and_lengths(smoke_run):
    results = smoke_run.results
    assert results["n_probe_short"] > 0 and results["n_probe_long"] > 0
    assert results["top_head_share"] > 3 * results["uniform_share"]  # a few heads carry the short direction
    assert results["steer_minus"] < results["steer_zero"] < results["steer_plus"]  # −w shortens, +w lengthens
    assert results["steer_plus"] - results["steer_minus"] > abs(results["random_steer_plus"] - results["random_steer_minus"])
    assert results["thinkedit_stop_change_shortest"] < results["random_direction_edit_stop_change_shortest"]  # stops later
    assert abs(results["thinkedit_response_change_rest"]) < abs(results["prompting_response_change_rest"])  # the rest: little change


@pytest.mark.notebook
def test_figures_and_paper_table(smoke_run):
    assert len(smoke_run.paper_table(("direction_layers", "head_scores", "edit_effect", "steering"))) == 5
