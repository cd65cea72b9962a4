"""Selective Steering notebook: a headless smoke run and the mechanism it must show."""
import pandas as pd
import pytest

SLUG = "selective_steering"  # the notebook the shared smoke_run fixture runs


@pytest.mark.notebook
def test_mask_keeps_only_layers_where_the_classes_project_with_opposite_signs(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    layers = pd.read_csv(folder / "results" / "layers.csv")
    assert 0 < results["n_selected_layers"] < results["n_layers"]
    selected = layers[layers.selected]
    assert (selected.harmful_projection * selected.harmless_projection < 0).all()
    assert selected.groupby("layer").size().eq(layers.groupby("layer").size()[selected.layer.unique()]).all()  # whole layers only
    assert abs(results["b1_b2_dot"]) < 1e-5


@pytest.mark.notebook
def test_rotation_preserves_norms_and_addition_does_not(smoke_run):
    results = smoke_run.results
    assert results["ss_max_norm_change"] < 1e-5          # measured on every steered token inside the model (fp32)
    assert results["standard_max_norm_change"] < 1e-5
    assert results["actadd_max_norm_change"] > 1e-2


@pytest.mark.notebook
def test_selective_rotation_controls_without_collapse(smoke_run):
    results = smoke_run.results
    assert results["ss_best_readout_drop"] > 0.3                                  # harmful prompts read as less harmful
    assert results["ss_best_readout_drop"] > 2 * abs(results["random_readout_drop"])  # specific to the b1-b2 plane
    assert results["ss_max_nll_rise"] < results["actadd_max_nll_rise"]            # bounded over every angle; ActAdd is not
    assert results["ss_max_nll_rise"] < results["standard_max_nll_rise"]
    assert results["all_layers_nll_rise"] > results["ss_nll_rise_at_best"] + 0.5  # layer selection is what keeps coherence


@pytest.mark.notebook
def test_figures_and_comparison_table_exist(smoke_run):
    assert len(smoke_run.paper_table(("layer_selection", "control_vs_angle", "tradeoff", "norm_change"))) >= 6
