"Sweeps: two notebooks x two seeds on the local process pool, on a local Ray cluster and through submitit; a killed job; finished runs skipped."
import json, os, shutil, signal, subprocess, sys, threading, time

import pandas as pd
import pytest

from steerlab.lab import cli
from steerlab.lab.run import Run
from steerlab.lab.sweep import job_record_path, sweep


def check_sweep(folder, runs, stability, statuses):
    "Each job is an ordinary run whose manifest carries the job's key; the table and the stability figure are written."
    assert list(runs.status) == statuses, runs[["job", "status", "error"]]
    assert list(zip(runs.slug, runs.seed)) == [("tiny", 0), ("tiny", 1), ("verdicts", 0), ("verdicts", 1)]
    for row in runs.itertuples():
        manifest = Run.load(os.environ["STEERLAB_RUNS_DIR"] + f"/{row.slug}/{row.run_id}").manifest
        assert manifest["status"] == "ok" and manifest["seed"] == row.seed and manifest["run_key"].startswith(row.run_key)
    assert runs.loc[runs.slug == "tiny", "result.mean"].notna().all()  # recorded numbers come into the table
    assert set(runs.loc[runs.slug == "verdicts", "verdict.C1: items of mean 2.0"]) == {"reproduced"}
    assert list(stability.claim) == ["C1: items of mean 2.0", "C2: items of mean 0.0"] and set(stability.seeds) == {"0 1"}
    assert pd.read_csv(folder / "runs.csv").shape == runs.shape and (folder / "stability.png").stat().st_size > 0


def test_local_sweep_then_rerun_skips_what_finished(lab):
    folder, runs, stability = sweep(["tiny", "verdicts"], [0, 1], workers=2, progress=False)
    check_sweep(folder, runs, stability, ["ok"] * 4)
    again = sweep(["tiny", "verdicts"], [0, 1], progress=False)[1]
    assert list(again.status) == ["skipped"] * 4 and list(again.run_id) == list(runs.run_id)
    grown = sweep(["tiny"], [0], grid={"n": [5, 6]}, progress=False)[1]  # n=5 is the default: only n=6 is new
    assert list(grown.status) == ["skipped", "ok"] and grown.run_id[0] == runs.run_id[0]
    assert list(sweep(["tiny"], [0], force=True, progress=False)[1].status) == ["ok"]


def test_ray_sweep_on_a_local_cluster(lab):
    "A real Ray cluster of 2 CPUs, started by the sweep in a network namespace that has only loopback: nothing it opens is reachable from outside."
    if shutil.which("unshare") is None or shutil.which("ip") is None: pytest.fail("the Ray test needs unshare and ip (util-linux, iproute2)")
    run = "from steerlab.lab.sweep import sweep; sweep(['tiny', 'verdicts'], [0, 1], executor='ray', workers=2, out=sys.argv[1], progress=False)"
    command = [sys.executable, "-c", "import sys; " + run, str(lab / "sweep")]
    isolated = ["unshare", "--net", "--map-root-user", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    done = subprocess.run(isolated, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = pd.read_csv(lab / "sweep" / "runs.csv")
    check_sweep(lab / "sweep", runs, pd.read_csv(lab / "sweep" / "stability.csv"), ["ok"] * 4)


def test_submitit_path_with_its_local_executor(lab):
    folder, runs, _ = sweep(["verdicts"], [0], executor="slurm", cluster="local", progress=False)
    assert list(runs.status) == ["ok"] and (folder / "submitit").is_dir()


def test_killed_job_is_reported_and_the_others_finish(lab, capsys):
    (lab / "grid.yaml").write_text("- {wait: 300}\n- {wait: 0}\n")
    out = lab / "sweep"
    status = {}
    thread = threading.Thread(target=lambda: status.update(code=cli.main(
        ["sweep", "verdicts", "--grid", str(lab / "grid.yaml"), "--workers", "2", "--out", str(out)])))
    thread.start()
    record, deadline = job_record_path(out, {"id": "000-verdicts"}), time.monotonic() + 120
    while not (record.is_file() and json.loads(record.read_text())["status"] == "running"):
        assert time.monotonic() < deadline and thread.is_alive(), "the waiting job never started"
        time.sleep(0.2)
    os.kill(json.loads(record.read_text())["pid"], signal.SIGKILL)
    thread.join(timeout=180)
    assert status["code"] == 1  # the command says a job did not finish
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.status) == ["killed", "ok"] and runs.error[0] == "killed by SIGKILL"
    assert list(runs["param.wait"]) == [300, 0]
    assert "killed by SIGKILL" in capsys.readouterr().out
