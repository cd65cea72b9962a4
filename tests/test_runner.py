"The headless runner: bad input, failed notebooks, crashes, determinism and the executing interpreter."
import json, os, subprocess, sys
from pathlib import Path

import pandas as pd
import papermill
import pytest

from steerlab.lab import cli
from steerlab.files import sha256_file
from steerlab.errors import SteerlabError
from steerlab.lab.params import resolve_params
from steerlab.lab.runner import list_papers, run_notebook

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "tests" / "notebooks"


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def test_unknown_paper_names_close_matches(lab):
    with pytest.raises(SteerlabError, match=r"unknown paper 'tinny' \(did you mean tiny\?\); valid: raises, tiny"):
        run_notebook("tinny")


def test_unknown_parameter_lists_valid_names(lab):
    with pytest.raises(SteerlabError, match=r"'scal' \(did you mean scale\?\); valid: n, scale, label, seed"):
        run_notebook("tiny", {"scal": 2})
    assert not (lab / "runs").exists()


def test_wrong_type_names_parameter_type_and_value(lab):
    with pytest.raises(SteerlabError, match=r"^parameter 'n' expects int, got 'abc'$"):
        run_notebook("tiny", {"n": "abc"})
    with pytest.raises(SteerlabError, match=r"parameter 'scale' expects float, got True"):
        resolve_params("tiny", {"scale": True})


def test_parameter_layers(lab):
    (lab / "params" / "tiny").mkdir(parents=True)
    (lab / "params" / "tiny" / "paper.yaml").write_text("n: 7\nscale: 2\n")
    overrides = lab / "overrides.yaml"
    overrides.write_text("scale: 3\n")
    assert resolve_params("tiny", profile="smoke") == {"n": 5, "scale": 1.0, "label": "base", "seed": 0}
    assert resolve_params("tiny", {"label": "0.10", "seed": "4"}, profile="paper", params_file=overrides) == \
        {"n": 7, "scale": 3.0, "label": "0.10", "seed": 4}
    with pytest.raises(SteerlabError, match="no 'gpu' profile for tiny: .*gpu.yaml does not exist"):
        resolve_params("tiny", profile="gpu")
    overrides.write_text("- n\n")
    with pytest.raises(SteerlabError, match="must map names to values"):
        resolve_params("tiny", params_file=overrides)


def test_runs_folder_not_writable_is_refused_before_executing(lab, monkeypatch):
    (lab / "blocker").write_text("a file where the runs folder should be")
    monkeypatch.setenv("STEERLAB_RUNS_DIR", str(lab / "blocker" / "runs"))
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("the notebook was executed"))
    with pytest.raises(SteerlabError, match=r"runs folder .*blocker/runs/tiny is not writable"):
        run_notebook("tiny")


def test_runner_crash_leaves_only_a_hidden_scratch_folder(lab, monkeypatch):
    def crash(*args, **kwargs): raise KeyboardInterrupt
    monkeypatch.setattr(papermill, "execute_notebook", crash)
    with pytest.raises(KeyboardInterrupt):
        run_notebook("tiny")
    folder = lab / "runs" / "tiny"
    assert visible(folder) == [] and len(list(folder.iterdir())) == 1
    assert {row["slug"]: row["status"] for row in list_papers()}["tiny"] == "never run"


def without_run_id_and_timings(manifest: dict) -> dict:
    return {key: value for key, value in manifest.items() if key not in ("run_id", "timings")}


def test_same_params_and_seed_give_same_bytes_in_the_runners_interpreter(lab):
    first, second = run_notebook("tiny", {"seed": 3}), run_notebook("tiny", {"seed": 3})
    other = run_notebook("tiny", {"seed": 4})
    table = "results/values.csv"
    assert (first / table).read_bytes() == (second / table).read_bytes() != (other / table).read_bytes()
    a, b = (json.loads((run / "manifest.json").read_text()) for run in (first, second))
    assert a["run_id"] != b["run_id"] and without_run_id_and_timings(a) == without_run_id_and_timings(b)
    assert a["status"] == "ok" and a["error"] is None and a["seed"] == 3 and a["params"]["seed"] == 3
    assert a["outputs"] == {table: sha256_file(first / table)} and a["figures"] == ["values"]
    assert a["results"]["n"] == 5 and isinstance(a["results"]["mean"], float)
    assert a["inputs"]["tests/notebooks/tiny.ipynb"] == {"role": "notebook", "sha256": sha256_file(NOTEBOOKS / "tiny.ipynb")}
    assert a["versions"]["torch"] and a["device"] == "cpu" and a["timings"]["seconds"] > 0
    assert json.loads((other / "manifest.json").read_text())["params_hash"] != a["params_hash"]
    assert visible(lab / "runs" / "tiny") == sorted(run.name for run in (first, second, other))
    executed = json.loads((first / "notebook.ipynb").read_text())
    printed = [line.strip() for cell in executed["cells"] for output in cell.get("outputs", [])
               for line in output.get("text", [])]
    assert sys.executable in printed  # the kernel ran in the runner's interpreter
    assert not list(NOTEBOOKS.glob("kernel-*"))  # its sockets lived outside the lab


def test_failed_notebook_is_kept_marked_failed_and_exits_1(lab, capsys):
    command = [sys.executable, "-c", "import sys; from steerlab.lab.cli import main; sys.exit(main())", "run", "raises"]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO)})
    assert done.returncode == 1, done.stderr
    assert "----> 1 raise ValueError" in done.stderr  # the notebook's own traceback is shown
    assert "ValueError: boom in the middle of the run" in done.stderr.splitlines()[-1]
    [run_id] = visible(lab / "runs" / "raises")
    manifest = json.loads((lab / "runs" / "raises" / run_id / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"] == "ValueError: boom in the middle of the run"
    assert manifest["results"] == {"before_error": 1} and manifest["timings"]["end"]
    assert (lab / "runs" / "raises" / run_id / "notebook.ipynb").is_file()
    assert not (lab / "figures" / "raises").exists()
    assert {row["slug"]: row["status"] for row in list_papers()} == {"raises": "failed", "tiny": "never run", "verdicts": "never run"}
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].split() == ["raises", "Raising", "fixture", run_id, "failed", manifest["timings"]["start"]]
    assert listed[2].split() == ["tiny", "Tiny", "fixture", "-", "never", "run", "-"]


@pytest.mark.parametrize("argv, message", [
    (["run", "tinny"], "unknown paper 'tinny' (did you mean tiny?)"),
    (["run", "tiny", "-p", "n", "abc"], "parameter 'n' expects int, got 'abc'"),
    (["run", "tiny", "-p", "rows", "3"], "unknown tiny parameter 'rows'"),
    (["run", "tiny", "--profile", "paper"], "no 'paper' profile for tiny"),
    (["run", "verdicts", "-p", "effect", "11"], "parameter 'effect' must lie in -10..10, got 11.0"),
    (["prefetch", "verdicts", "--profile", "smoke", "-p", "effect", "-11"], "parameter 'effect' must lie in -10..10, got -11.0"),
    (["figures", "tiny"], "tiny has no successful run yet"),
    (["data", "fetch", "no-such-file"], "unknown data file or paper slug 'no-such-file'"),
])
def test_cli_bad_input_prints_one_line_and_exits_2(lab, capsys, argv, message):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"steerlab: error: {message}") and err.count("\n") == 1


@pytest.mark.notebook
def test_lab_settings_reach_a_paper_notebook(tmp_path, monkeypatch):
    "STEERLAB_DTYPE reaches a paper notebook whose `dtype` parameter is left None: its model runs in bfloat16."
    monkeypatch.setenv("STEERLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("STEERLAB_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("STEERLAB_DTYPE", "bfloat16")
    small = dict(n_pairs=4, n_eval=4, strengths=[0.1, 0.2], max_new_tokens=4)  # bf16 matmuls are slow on a CPU
    manifest = json.loads((run_notebook("quickstart", small) / "manifest.json").read_text())
    assert manifest["params"]["dtype"] is None and manifest["settings"]["dtype"] == "bfloat16"
    assert [m["dtype"] for m in manifest["models"]] == ["torch.bfloat16"]


def test_seeds_give_each_claims_verdict_per_seed(lab, capsys):
    assert cli.main(["run", "verdicts", "--seeds", "0", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert [line.split("(")[1].split(",")[0] for line in out.splitlines() if line.startswith("run:")] == ["seed 0", "seed 1", "seed 2"]
    table = pd.read_csv(lab / "runs" / "verdicts" / "stability.csv")
    assert list(table.columns) == ["claim", "seed 0", "seed 1", "seed 2", "verdict", "stable"]
    clear = table.set_index("claim").loc["C1: items of mean 2.0"]
    assert clear.verdict == "reproduced" and clear.stable  # a clear effect holds over seeds
    assert set(table.verdict) <= {"reproduced", "same direction", "not reproduced"}
    published = lab / "figures" / "stability" / "verdicts.csv"  # the smoke parameters' table, which the README summarises
    assert published.read_text() == (lab / "runs" / "verdicts" / "stability.csv").read_text()
    assert cli.main(["run", "verdicts", "--seeds", "0", "1", "-p", "effect", "0"]) == 0
    assert pd.read_csv(published).columns.tolist()[1:4] == ["seed 0", "seed 1", "seed 2"]  # other parameters are not published
    assert cli.main(["run", "verdicts", "--seeds", "0", "-p", "seed", "1"]) == 2  # one way to give seeds
