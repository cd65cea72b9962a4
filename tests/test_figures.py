"Figures carry their provenance, land in the run and in figures/<slug>/, and redraw from saved results alone."
import importlib, json, sys, types
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from steerlab.lab import cli
from steerlab.files import sha256_file
from steerlab.lab.figures import save_figure
from steerlab.errors import SteerlabError
from steerlab.lab.run import Run
from steerlab.lab.runner import redraw, run_notebook

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


def fake_run(folder: Path) -> types.SimpleNamespace:
    manifest = dict(slug="demo", run_id="20260101-000000-abcd", notebook="nbs/papers/demo.ipynb", params={"n": 3},
                    params_hash="f" * 64, git={"sha": "0123abc", "dirty": False})
    (folder / "results").mkdir(parents=True)
    pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 0.25, 0.125]}).to_csv(folder / "results" / "xy.csv", index=False)
    return types.SimpleNamespace(dir=folder, manifest=manifest)


def png_text(path: Path) -> dict:
    with Image.open(path) as image:
        return dict(image.text, dpi=image.info["dpi"])


def line_figure():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [0.5, 0.25, 0.125])
    return fig


def test_png_pdf_and_sidecar_carry_the_provenance(tmp_path):
    run = fake_run(tmp_path)
    png = save_figure(line_figure(), "decay", run, source="xy")
    assert png == tmp_path / "figures" / "decay.png"
    text = png_text(png)
    table_sha = sha256_file(tmp_path / "results" / "xy.csv")
    assert {key: text[key] for key in ("run_id", "params_hash", "notebook", "git_sha", "source_sha256")} == \
        {"run_id": "20260101-000000-abcd", "params_hash": "f" * 64, "notebook": "nbs/papers/demo.ipynb",
         "git_sha": "0123abc", "source_sha256": table_sha}
    assert text["dpi"] == pytest.approx((150, 150), abs=0.5)
    pdf = (tmp_path / "figures" / "decay.pdf").read_bytes()
    assert b"(steerlab demo run 20260101-000000-abcd)" in pdf and f"source_sha256={table_sha}".encode() in pdf
    assert b"CreationDate" not in pdf
    sidecar = json.loads((tmp_path / "figures" / "decay.json").read_text())
    assert sidecar == dict(figure="decay", slug="demo", run_id="20260101-000000-abcd", notebook="nbs/papers/demo.ipynb",
                           params={"n": 3}, params_hash="f" * 64, git={"sha": "0123abc", "dirty": False},
                           source=dict(table="xy", path="results/xy.csv", sha256=table_sha),
                           files=["decay.png", "decay.pdf"])


def test_bad_figure_input_is_refused(tmp_path):
    run = fake_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="source table 'sweep' was not saved"):
        save_figure(line_figure(), "decay", run, source="sweep")
    with pytest.raises(ValueError, match="no folders"):
        save_figure(line_figure(), "../decay", run)
    assert not (tmp_path / "figures").exists() or list((tmp_path / "figures").iterdir()) == []


@pytest.fixture
def tiny_methods(monkeypatch):
    "steerlab.methods.tiny: the tiny fixture's figures(tables), as a paper module would provide it."
    monkeypatch.syspath_prepend(str(NOTEBOOKS))
    monkeypatch.setitem(sys.modules, "steerlab.methods.tiny", importlib.import_module("tiny_figures"))


def test_run_publishes_figures_and_redraw_uses_only_saved_results(tmp_path, monkeypatch, tiny_methods, capsys):
    for name, value in dict(PAPERS_DIR=NOTEBOOKS, RUNS_DIR=tmp_path / "runs", FIGURES_DIR=tmp_path / "figures").items():
        monkeypatch.setenv(f"STEERLAB_{name}", str(value))
    folder = run_notebook("tiny")
    run = Run.load(folder)
    published = tmp_path / "figures" / "tiny"
    assert sorted(p.name for p in published.iterdir()) == ["values.json", "values.pdf", "values.png"]
    for name in ("values.png", "values.pdf", "values.json"):
        assert (published / name).read_bytes() == (folder / "figures" / name).read_bytes()
    assert png_text(published / "values.png")["run_id"] == run.run_id
    assert json.loads((published / "values.json").read_text())["source"]["sha256"] == run.manifest["outputs"]["results/values.csv"]

    drawn_in_kernel = {name: (folder / "figures" / name).read_bytes() for name in ("values.png", "values.pdf", "values.json")}
    for path in [*(folder / "figures").glob("*.p*"), *published.iterdir()]: path.unlink()  # the sidecars stay
    assert cli.main(["figures", "tiny"]) == 0 and "values.{png,pdf,json}" in capsys.readouterr().out
    assert {name: (folder / "figures" / name).read_bytes() for name in drawn_in_kernel} == drawn_in_kernel
    assert (published / "values.png").read_bytes() == drawn_in_kernel["values.png"]

    table = folder / "results" / "values.csv"
    changed = pd.read_csv(table).assign(value=lambda t: t.value * 10)
    changed.to_csv(table, index=False)
    [png] = redraw("tiny", run.run_id)
    assert png.read_bytes() != drawn_in_kernel["values.png"]
    assert json.loads(png.with_suffix(".json").read_text())["source"]["sha256"] == sha256_file(table)
    assert [p.name for p in (tmp_path / "runs" / "tiny").iterdir()] == [run.run_id]  # nothing reran


def test_redraw_needs_the_papers_figures_function(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERLAB_PAPERS_DIR", str(NOTEBOOKS))
    monkeypatch.setenv("STEERLAB_RUNS_DIR", str(tmp_path / "runs"))
    run = tmp_path / "runs" / "tiny" / "20260101-000000-abcd"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps(dict(slug="tiny", run_id=run.name, status="ok",
                                                       timings={"start": "2026-01-01T00:00:00+00:00"})))
    with pytest.raises(SteerlabError, match=r"steerlab.methods.tiny defines no figures\(tables\) function"):
        redraw("tiny")
