"A run's HTML report and PDF, `steerlab cite`, and the docs site, on a real quickstart run; the report and a paper page rendered in headless Chromium (screenshots kept in tests/artifacts/)."
import csv, io, json, os, re, shutil, time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from steerlab.errors import SteerlabError
from steerlab.lab.cite import cite
from steerlab.lab.cli import main
from steerlab.lab.report import chromium, report_html

SLUG = "quickstart"  # the lab's cheapest run: the shared smoke_run fixture runs it once for this file
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"  # screenshots of the browser test, kept (gitignored)


@pytest.fixture
def lab(smoke_run, monkeypatch):
    "The lab settings pointed at the smoke run's runs folder."
    monkeypatch.setenv("STEERLAB_RUNS_DIR", str(smoke_run.folder.parents[1]))
    return smoke_run


def needs_chromium():
    "Skip without headless Chromium, except in CI, which installs it (.ci/run)."
    if shutil.which("chromium") is None and not os.environ.get("CI"):
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")


def rendered(url: str, screenshot: Path, height: int = 2000) -> BeautifulSoup:
    "The DOM of `url` after headless Chromium loaded it and ran its scripts; a screenshot of its top `height` pixels is saved to `screenshot`."
    chromium("--hide-scrollbars", f"--window-size=1280,{height}", f"--screenshot={screenshot}", url)
    return BeautifulSoup(chromium("--virtual-time-budget=10000", "--dump-dom", url), "html.parser")


def images_loaded(dom: BeautifulSoup) -> tuple[int, int]:
    "(loaded, all) images, as the page's own script marked them on <body> after the load event."
    loaded, total = dom.body["data-images-loaded"].split("/")
    return int(loaded), int(total)


@pytest.mark.notebook
def test_report_holds_claims_table_figures_and_provenance(lab, tmp_path):
    started = time.perf_counter()
    path = report_html(SLUG, out=tmp_path / "report.html")
    print(f"report built in {time.perf_counter() - started:.2f} s: {path}")
    page = BeautifulSoup(path.read_text(), "html.parser")
    manifest = lab.manifest
    assert page.h1.text.startswith("Quickstart") and lab.folder.name in page.text
    with open(lab.folder / "results" / "paper_vs_run.csv", newline="") as f: claims = list(csv.DictReader(f))
    rows = page.select("table.paper-vs-run tbody tr")
    assert [row.td.text for row in rows] == [claim["claim"] for claim in claims]
    assert [row.select_one("td.verdict").text for row in rows] == [claim["verdict"] for claim in claims]
    figures = sorted(p.stem for p in (lab.folder / "figures").glob("*.png"))
    assert [figure["id"] for figure in page.select("figure")] == figures == ["strength_sweep"]
    figure = page.select_one("figure#strength_sweep")
    assert figure.img["src"].startswith("data:image/png;base64,")
    footer = figure.select_one("table.provenance").text
    data = {name: entry["sha256"] for name, entry in manifest["inputs"].items() if entry["role"].startswith("data")}
    assert data and all(name in footer and sha in footer for name, sha in data.items())
    sidecar = json.loads((lab.folder / "figures" / "strength_sweep.json").read_text())
    for value in (manifest["run_id"], manifest["git"]["sha"] or "outside git", manifest["params_hash"], sidecar["source"]["sha256"]):
        assert value in footer
    headings = [h2.text for h2 in page.select("h2")]
    assert headings[:4] == ["Claims under test", "Paper vs this run", "Figures", "Deviations"]
    assert page.find("h2", string="Deviations").find_next("ul").li  # the notebook's deviations, as a list
    assert not [tag for tag in page.select("[src], [href]") if re.match(r"(https?:)?//", tag.get("src") or tag.get("href"))]


@pytest.mark.notebook
def test_report_cli_pdf_and_paper_page_in_headless_chromium(lab, tmp_path):
    "The report and the quickstart's page of a reduced site render in Chromium with their tables and loaded figures; screenshots go to tests/artifacts/."
    needs_chromium()
    from steerlab.lab.docs import build_site
    ARTIFACTS.mkdir(exist_ok=True)
    out = io.StringIO()
    started = time.perf_counter()
    with redirect_stdout(out): assert main(["report", SLUG, "--pdf", "--out", str(tmp_path / "report.pdf")]) == 0
    print(f"report and PDF in {time.perf_counter() - started:.1f} s")
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF") and (tmp_path / "report.html").is_file()
    assert out.getvalue().strip().endswith("report.pdf")

    report = rendered((tmp_path / "report.html").as_uri(), ARTIFACTS / "report.png")
    assert len(report.select("table.paper-vs-run tbody tr")) == 3
    assert images_loaded(report) == (1, 1)

    started = time.perf_counter()
    site = build_site(tmp_path / "site", manual=[REPO / "nbs" / "17_report.ipynb"], slugs=[SLUG])
    print(f"reduced site (1 manual page, 1 paper page) built in {time.perf_counter() - started:.1f} s")
    for html in site.rglob("*.html"):
        assert not re.search(r'<(script|link|img)\b[^>]*\b(src|href)="(https?:)?//', html.read_text()), f"{html.name} loads from the network"
    page = rendered((site / "papers" / f"{SLUG}.html").as_uri(), ARTIFACTS / "paper_page.png", height=12000)  # the whole page
    assert page.find("h1").text.strip().startswith("Quickstart")
    tables = [table for table in page.select("table") if "verdict" in [th.text for th in table.select("th")]]
    assert len(tables) == 1 and len(tables[0].select("tbody tr")) == 3  # the notebook's paper-vs-run table
    loaded, total = images_loaded(page)
    assert loaded == total >= 1  # the strength sweep, and any other image of the page
    home = rendered((site / "index.html").as_uri(), ARTIFACTS / "index.png")
    assert home.find("a", href=f"papers/{SLUG}.html") and lab.folder.name in home.text
    assert (site / "manual" / "17_report.html").is_file()
    print(f"screenshots: {ARTIFACTS}")


@pytest.mark.notebook
def test_cite_names_the_run_whose_figures_are_cited(lab):
    out = io.StringIO()
    with redirect_stdout(out): assert main(["cite", SLUG]) == 0
    entries = bibtex_entries(out.getvalue())
    assert list(entries) == ["steerlab"]  # the quickstart is the lab's own: no paper entry
    assert out.getvalue().startswith("% quickstart is one of the lab's own notebooks")
    lab_entry = entries["steerlab"]
    assert {"title", "author", "version", "note"} <= set(lab_entry) and lab_entry["author"] == "{steerlab contributors}"
    assert lab.folder.name in lab_entry["note"] and (lab.manifest["git"]["sha"] or "none") in lab_entry["note"]


def bibtex_entries(text: str) -> dict[str, dict[str, str]]:
    "Each `@misc{key, name = {value}, ...}` entry of `text` by key: its fields, braces balanced; anything else must be a % comment or blank."
    entries, rest = {}, text
    for match in re.finditer(r"@misc\{([a-z0-9]+),\n((?:  \w+ = \{.*\},?\n)+)\}", text):
        fields = dict(re.findall(r"  (\w+) = \{(.*)\},?\n", match.group(2)))
        for value in fields.values():
            depth = 0
            for char in re.sub(r"\\[{}]", "", value):
                depth += {"{": 1, "}": -1}.get(char, 0)
                assert depth >= 0, value
            assert depth == 0, value
        entries[match.group(1)] = fields
        rest = rest.replace(match.group(0), "")
    assert all(line.startswith("%") or not line.strip() for line in rest.splitlines()), rest
    return entries


def test_cite_a_paper_without_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERLAB_RUNS_DIR", str(tmp_path / "runs"))
    text = cite("selective_steering")
    entries = bibtex_entries(text)
    assert list(entries) == ["dang2026selective", "steerlab"]
    paper = entries["dang2026selective"]
    assert paper == dict(title="{Selective Steering: Norm-Preserving Control Through Discriminative Layer Selection}",
                         author="Dang, Quy-Anh and Ngo, Chris", year="2026", eprint="2601.19375", archivePrefix="arXiv",
                         url="https://arxiv.org/abs/2601.19375")
    assert "note" not in entries["steerlab"]
    assert "% no run to cite: selective_steering has no successful run yet: `steerlab run selective_steering` makes one" in text
    with pytest.raises(SteerlabError, match="unknown selective_steering run 'nope'"): cite("selective_steering", "nope")


def test_report_without_a_run_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERLAB_RUNS_DIR", str(tmp_path / "runs"))
    err = io.StringIO()
    with redirect_stderr(err): assert main(["report", "east"]) == 2
    assert err.getvalue() == "steerlab: error: east has no successful run yet: `steerlab run east` makes one\n"
