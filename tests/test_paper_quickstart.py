"The quickstart notebook runs headless and shows its mechanism: the diff-in-means vector moves the model, a random one of equal norm less."
import json

import pytest

from steerlab.runs import run_notebook


@pytest.mark.notebook
def test_quickstart_runs_and_steers(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("STEERLAB_FIGURES_DIR", str(tmp_path / "figures"))
    run_dir = run_notebook("quickstart")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    results = manifest["results"]
    assert manifest["status"] == "ok"
    assert 0 < results["vector_to_site_norm"] < 1
    assert results["margin_gain"] > 0.5                            # toward cheerful openings, by more than half a nat
    assert results["margin_gain"] > results["random_margin_gain"]  # more than a random direction of the same norm
    assert (run_dir / "results" / "paper_vs_run.csv").is_file()
    assert (tmp_path / "figures" / "quickstart" / "strength_sweep.png").is_file()
    assert any(key.endswith("alpaca.json") for key in manifest["inputs"])
