"The quickstart notebook runs headless and shows its mechanism: the diff-in-means vector moves the model along its sign, random ones of equal norm far less."
import pytest

SLUG = "quickstart"  # the notebook the shared smoke_run fixture runs


@pytest.mark.notebook
def test_quickstart_runs_and_steers(smoke_run):
    results, manifest = smoke_run.results, smoke_run.manifest
    assert 0 < results["vector_to_site_norm"] < 1
    assert results["margin_gain"] > 0.5                            # toward cheerful openings, by more than half a nat
    assert results["margin_monotone"] and results["peak_strength"] > 0  # rising with strength up to its peak
    assert results["signed_effect"] > 2 * results["random_signed_effect"]  # follows v's sign; random directions far less
    smoke_run.paper_table(("strength_sweep",))
    assert len(manifest["models"]) == 1 and manifest["models"][0]["weights_sha256"]  # the exact weights used
