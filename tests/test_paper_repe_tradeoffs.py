"""RepE trade-offs notebook: a headless smoke run and the mechanism it must show."""
import math

import pandas as pd
import pytest

SLUG = "repe_tradeoffs"  # the notebook the shared smoke_run fixture runs


@pytest.mark.notebook
def test_alignment_grows_linearly_in_the_norm(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    assert results["min_pairs_separated"] > 0.75                               # the reading vector separates most pairs (chance: 0.5)
    assert results["align_logit_slope"] > 0 and results["align_logit_r2"] > 0.9  # log-odds linear on the aligning side
    assert 0.5 < results["align_score_exponent"] < 1.5                          # gain ~ r_e^1, not r_e^2
    sweep = pd.read_csv(folder / "results" / "sweep.csv")
    aligning = sweep[sweep.r_e >= 0].sort_values("r_e")
    assert aligning.align_score.is_monotonic_increasing


@pytest.mark.notebook
def test_helpfulness_falls_quadratically_in_the_norm(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    assert results["help_full_exponent"] > 1.5 and results["help_options_exponent"] > 1.2  # loss ~ r_e^2
    assert results["help_full_exponent"] > results["align_score_exponent"] + 0.5          # quadratic loss, linear gain
    assert results["repe_full_loss"] > 0 and results["repe_options_loss"] > 0              # steering either way costs helpfulness
    assert results["help_full_r2"] > 0.8 and results["help_full_b"] > 0                   # Corollary 1 describes the curve
    sweep = pd.read_csv(folder / "results" / "sweep.csv")
    assert sweep.p_full.idxmax() == sweep.r_e.abs().idxmin()                               # unsteered is the most helpful


@pytest.mark.notebook
def test_alignment_comes_from_the_direction_not_the_norm(smoke_run):
    results = smoke_run.results
    assert results["repe_align_gain"] > 2 * max(results["random_align_gain"], 0.0)
    assert results["repe_align_odd"] > abs(results["random_align_odd"])      # the part that follows the sign of r_e
    assert not math.isnan(results["prompt_align_gain"])


@pytest.mark.notebook
def test_figures_and_comparison_table_exist(smoke_run):
    assert len(smoke_run.paper_table(("alignment_helpfulness", "tradeoff"))) == 7
