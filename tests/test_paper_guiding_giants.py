"""Guiding Giants (weighted activation steering) notebook: a headless smoke run and the mechanism it must show."""
import pytest

SLUG = "guiding_giants"  # the notebook the shared smoke_run fixture runs


@pytest.mark.notebook
def test_controller_separates_harmful_from_benign(smoke_run):
    results = smoke_run.results
    assert results["scale_auroc"] > 0.9
    assert results["scale_harmful_mean"] > 0 > results["scale_benign_mean"]


@pytest.mark.notebook
def test_was_steers_harmful_inputs_more_selectively_than_a_fixed_patch(smoke_run):
    results = smoke_run.results
    assert results["gain_harmful_was"] > 1.0                       # the refusal margin rises on harmful prompts (nats)
    assert results["gain_harmful_was"] > results["gain_benign_was"]
    assert results["selectivity_was"] > results["selectivity_fixed_x1"] + 1.0
    assert results["gain_benign_fixed_x1"] > 0                     # a fixed patch also pushes benign prompts toward refusal
    assert results["gain_harmful_base"] == results["gain_benign_base"] == 0


@pytest.mark.notebook
def test_figures_and_comparison_table_exist(smoke_run):
    assert len(smoke_run.paper_table(("selectivity", "controller_outputs"))) >= 5
