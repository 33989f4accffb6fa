"""``report.html``: written with every figure and its tables, escaped, self-contained (relative links), opened in a
real headless Chromium (images load, tables present, no console errors), and the light install without torch."""

import html.parser
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pandas as pd
import pytest

from figures import FIGURES
from figures.cli import main
from figures.report import ReportEntry, render_report, table_id

#: A small, fast subset that still covers a table-less figure (phase_diagram) and several tables per figure kind.
SUBSET = ("phase_diagram", "critical_lines", "map_convergence", "mode_depth_scales", "conv_isometry",
          "batchnorm_eigenvalues")
ROOT = pathlib.Path(__file__).resolve().parents[1]


class _Page(html.parser.HTMLParser):
    """Images, links and table ids of an HTML page."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.tables, self.scripts = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        elif tag == "table":
            self.tables.append(attrs.get("id"))
        elif tag == "script":
            self.scripts += 1


@pytest.fixture(scope="module")
def report_dir():
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "figs"
        assert main(["--only", ",".join(SUBSET), "--quick", "--out", str(out), "--formats", "png",
                     "--no-progress"]) == 0
        yield out


def _expected_table_ids(out: pathlib.Path) -> list[str]:
    """Table ids the report must hold: each figure's table function applied to the figure's own data."""
    ids = []
    for spec in FIGURES:
        if spec.name in SUBSET and spec.tables is not None:
            count = len(spec.load_tables()(pd.read_csv(out / f"{spec.name}.csv")))
            ids += [table_id(spec.name, i) for i in range(count)]
    return ids


def test_report_links_every_figure_and_table(report_dir):
    page = _Page()
    page.feed((report_dir / "report.html").read_text(encoding="utf-8"))
    assert sorted(page.images) == sorted(f"{name}.png" for name in SUBSET)
    for ref in page.images + [h for h in page.links if not h.startswith("#")]:
        assert not ref.startswith(("/", "http:", "https:", "file:")), ref  # relative: the folder can be zipped
        assert (report_dir / ref).is_file(), ref
    assert page.tables == _expected_table_ids(report_dir)
    assert page.scripts == 0
    text = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "python -m figures --only critical_lines" in text and "--quick" in text
    assert "sigma_b2 = 0.05" in text and "softplus" in text  # the critical-point table


def test_report_survives_being_moved(report_dir, tmp_path):
    moved = tmp_path / "shared"
    shutil.copytree(report_dir, moved)
    page = _Page()
    page.feed((moved / "report.html").read_text(encoding="utf-8"))
    assert all((moved / src).is_file() for src in page.images)


def test_report_escapes_table_text_and_titles():
    frame = pd.DataFrame({"<b>col</b>": ["<script>alert(1)</script>"], "x": [1.5]})
    entry = ReportEntry(name="n<1>", description="a & b", command="python -m figures --only 'x'",
                        image="n.png", tables={"<i>title</i>": frame})
    text = render_report([entry])
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<b>col</b>" not in text and "<i>title</i>" not in text and "a &amp; b" in text


def test_report_embeds_the_image_when_no_browser_format_is_written(tmp_path):
    assert main(["--only", "batchnorm_eigenvalues", "--out", str(tmp_path), "--formats", "pdf",
                 "--no-progress"]) == 0
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in text
    assert not (tmp_path / "batchnorm_eigenvalues.png").exists()


def _chromium():
    """(browser binary, chromedriver) or a skip with the reason."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                   None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no Chromium/chromedriver on this machine (apt-get install chromium chromium-driver)")
    return webdriver, browser, driver


def test_report_in_a_headless_browser(report_dir, tmp_path):
    webdriver, browser, driver_path = _chromium()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except Exception as err:  # a browser that cannot start here is an environment problem, said as such
        pytest.skip(f"Chromium could not start: {err}")
    try:
        driver.set_page_load_timeout(60)
        driver.get((report_dir / "report.html").resolve().as_uri())
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "Promise.all(Array.from(document.images).map(i => i.complete ? null : "
            "new Promise(r => { i.onload = r; i.onerror = r; }))).then(() => done(null));")
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, "
            "i.naturalHeight]);")
        assert sorted(src for src, *_ in images) == sorted(f"{name}.png" for name in SUBSET)
        for src, complete, width, height in images:
            assert complete and width > 0 and height > 0, src
        table_ids = driver.execute_script("return Array.from(document.querySelectorAll('table')).map(t => t.id);")
        assert table_ids == _expected_table_ids(report_dir)
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('table')).map(t => t.querySelectorAll('tbody tr').length);")
        assert all(n > 0 for n in rows)
        errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
        assert errors == []
    finally:
        driver.quit()


def test_light_install_without_torch_skips_trainability_and_exits_0(tmp_path):
    """``import torch`` fails (as on ``pip install .`` without extras): the other figures are made, the skipped one
    is named with the extra to install, in the output and in the report, and there is no traceback."""
    code = ("import sys; sys.modules['torch'] = None; from figures.cli import main; "
            f"sys.exit(main(['--only', 'trainability,batchnorm_eigenvalues', '--quick', '--out', {str(tmp_path)!r}, "
            "'--formats', 'png', '--no-progress']))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert "SKIPPED" in output and "pip install 'sigprop-theory[validate]'" in output
    assert (tmp_path / "batchnorm_eigenvalues.png").is_file() and not (tmp_path / "trainability.png").exists()
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="skipped"' in report and "trainability" in report
    assert "pip install &#x27;sigprop-theory[validate]&#x27;" in report


def test_interrupted_run_keeps_the_finished_figures_and_their_report(tmp_path, monkeypatch, capsys):
    import figures.norm

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(figures.norm, "batchnorm_eigenvalues", interrupted)
    code = main(["--only", "conv_isometry,batchnorm_eigenvalues", "--quick", "--out", str(tmp_path), "--formats",
                 "png", "--no-progress"])
    assert code == 130
    assert "interrupted" in capsys.readouterr().out
    page = _Page()
    page.feed((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert page.images == ["conv_isometry.png"] and (tmp_path / "conv_isometry.png").is_file()
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written file left behind
