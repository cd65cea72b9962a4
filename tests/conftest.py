import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.lab.runner import run_notebook

if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker (and per notebook kernel it starts): the workers fill the cores
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def default_model():
    "The embedded SmolLM2-135M-Instruct in fp32 on the CPU (converted once into the cache)."
    return sl.load_model("default", device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tokenizer():
    return sl.load_tokenizer("default")


@pytest.fixture(scope="session", autouse=True)
def data_mirror():
    "Serve the shared data mirror on loopback for the whole session, so pooch's real download path runs."
    from steerlab.data import serve_mirror
    folder = Path(__file__).resolve().parents[2] / "shared" / "data-mirror"
    if not folder.is_dir() or os.environ.get("STEERLAB_DATA_MIRROR"):
        yield None
        return
    with serve_mirror(folder) as url:
        os.environ["STEERLAB_DATA_MIRROR"] = url
        yield url
        del os.environ["STEERLAB_DATA_MIRROR"]


VERDICTS = {"reproduced", "same direction", "not reproduced", "not testable at this scale"}


@dataclass
class SmokeRun:
    "A finished headless run of a paper notebook."
    folder: Path    # runs/<slug>/<run_id>
    manifest: dict
    results: dict   # the numbers the notebook recorded
    figures: Path   # figures/<slug>, where the run published its figures

    def paper_table(self, figures: Sequence[str]) -> pd.DataFrame:
        "Assert each figure was saved with its source and published, and the comparison table has the shared columns and verdicts; return it."
        for name in figures:
            assert (self.folder / "figures" / f"{name}.png").stat().st_size > 0
            assert json.loads((self.folder / "figures" / f"{name}.json").read_text())["source"] is not None
            assert (self.figures / f"{name}.png").is_file()
        table = pd.read_csv(self.folder / "results" / "paper_vs_run.csv")
        assert {"claim", "paper", "this_run", "scale", "verdict"} <= set(table.columns)
        assert set(table.verdict) <= VERDICTS, set(table.verdict) - VERDICTS
        return table


@pytest.fixture(scope="module")
def smoke_run(request, tmp_path_factory) -> SmokeRun:
    "Run the test module's notebook (its SLUG) once with the smoke profile, its runs and figures in a temporary folder."
    slug = request.module.SLUG
    tmp = tmp_path_factory.mktemp(slug)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEERLAB_RUNS_DIR", str(tmp / "runs"))
        mp.setenv("STEERLAB_FIGURES_DIR", str(tmp / "figures"))
        folder = run_notebook(slug, profile="smoke")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "ok", manifest.get("error")
    return SmokeRun(folder, manifest, manifest["results"], tmp / "figures" / slug)
