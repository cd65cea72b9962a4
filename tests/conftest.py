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


@pytest.fixture
def lab(tmp_path, monkeypatch):
    "A lab whose papers are the fixture notebooks (tests/notebooks) and whose runs, figures and profiles live in tmp_path."
    notebooks = Path(__file__).resolve().parent / "notebooks"
    for name, value in dict(PAPERS_DIR=notebooks, RUNS_DIR=tmp_path / "runs", FIGURES_DIR=tmp_path / "figures",
                            PARAMS_DIR=tmp_path / "params").items():
        monkeypatch.setenv(f"STEERLAB_{name}", str(value))
    return tmp_path


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


@dataclass
class SmokeRun:
    "A finished headless run of a paper notebook."
    folder: Path    # runs/<slug>/<run_id>
    manifest: dict
    results: dict   # the numbers the notebook recorded
    figures: Path   # figures/<slug>, where the run published its figures

    def paper_table(self, figures: Sequence[str]) -> pd.DataFrame:
        "Assert each figure was saved with its source and published, and every claim row has the shared columns and a computed verdict; return the table."
        for name in figures:
            assert (self.folder / "figures" / f"{name}.png").stat().st_size > 0
            assert json.loads((self.folder / "figures" / f"{name}.json").read_text())["source"] is not None
            assert (self.figures / f"{name}.png").is_file()
        table = pd.read_csv(self.folder / "results" / "paper_vs_run.csv", keep_default_na=False)
        assert tuple(table.columns) == sl.claims.COLUMNS, tuple(table.columns)
        assert set(table.verdict) <= set(sl.claims.VERDICTS), set(table.verdict) - set(sl.claims.VERDICTS)
        assert table.claim.str.match(r"^C[\w.-]*: ").all(), "each claim starts with its id"
        assert (table.reason != "").all() and (table.metric != "").all()
        measured = table[~table.verdict.isin(["not testable at this scale", "not run"])]
        assert (measured.this_run != "-").all() and (measured.null != "-").all(), "a measured row has an effect and a null"
        return table


def _run(request, tmp_path_factory, name: str, params: dict | None) -> SmokeRun:
    "Run the test module's notebook (its SLUG) with the smoke profile and `params`, its runs and figures in a temporary folder."
    slug = request.module.SLUG
    tmp = tmp_path_factory.mktemp(f"{slug}-{name}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEERLAB_RUNS_DIR", str(tmp / "runs"))
        mp.setenv("STEERLAB_FIGURES_DIR", str(tmp / "figures"))
        folder = run_notebook(slug, params, profile="smoke")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "ok", manifest.get("error")
    return SmokeRun(folder, manifest, manifest["results"], tmp / "figures" / slug)


@pytest.fixture(scope="module")
def smoke_run(request, tmp_path_factory) -> SmokeRun:
    "The test module's notebook (its SLUG) run once with the smoke profile."
    return _run(request, tmp_path_factory, "smoke", None)


@pytest.fixture(scope="module")
def other_run(request, tmp_path_factory) -> SmokeRun:
    "The notebook run once in bfloat16 with the module's OTHER_PARAMS: other valid values than its defaults (another layer, other sizes)."
    return _run(request, tmp_path_factory, "other", dict(request.module.OTHER_PARAMS, dtype="bfloat16"))
