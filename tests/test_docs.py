"""The documentation builds with warnings as errors, and its API reference covers every public module.

Runs ``sphinx-build -W --keep-going -b html docs OUT`` in a subprocess (about 20 s cold on 2 cores); skipped with a
message where the ``docs`` extra (sphinx, numpydoc, myst-parser) or torch (the ``validate`` pages import it) is missing.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

MISSING = [name for name in ("sphinx", "numpydoc", "myst_parser", "torch") if importlib.util.find_spec(name) is None]
needs_docs_extra = pytest.mark.skipif(
    bool(MISSING), reason=f"docs build needs {', '.join(MISSING)}: pip install -e '.[docs,validate]'"
)


def load_conf():
    """docs/conf.py as a module (importing it has no side effect beyond putting the checkout on sys.path)."""
    spec = importlib.util.spec_from_file_location("sigprop_docs_conf", DOCS / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    if MISSING:
        pytest.skip(f"docs build needs {', '.join(MISSING)}: pip install -e '.[docs,validate]'")
    out = tmp_path_factory.mktemp("docs")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(out / "doctrees"),
           str(DOCS), str(out / "html")]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    assert "WARNING" not in result.stderr, result.stderr[-6000:]
    return out / "html"


@needs_docs_extra
def test_every_public_module_has_an_api_page(html):
    conf = load_conf()
    for package in conf.PACKAGES:
        modules = conf.public_modules(package)
        assert modules, package
        for module in modules:
            page = html / "api" / "generated" / f"{module}.html"
            assert page.is_file(), f"no API page for {module}"
            assert f'id="module-{module}"' in page.read_text(encoding="utf-8"), module


@needs_docs_extra
def test_exported_names_are_documented_where_they_are_defined(html):
    conf = load_conf()
    for package in conf.PACKAGES:
        for target in conf.public_api(package):
            module = target.rsplit(".", 1)[0]
            while not (html / "api" / "generated" / f"{module}.html").is_file():
                module = module.rsplit(".", 1)[0]  # a method or nested class: its module's page
                assert "." in module, target
            text = (html / "api" / "generated" / f"{module}.html").read_text(encoding="utf-8")
            assert f'id="{target}"' in text, f"{target} has no entry on the page of {module}"


@needs_docs_extra
def test_narrative_pages_and_reexported_references_resolve(html):
    for page in sorted(DOCS.glob("*.md")):
        assert (html / f"{page.stem}.html").is_file(), f"{page.name} was not built"
    questions = (html / "questions.html").read_text(encoding="utf-8")
    # `meanfield.critical_sigma_w2` (the import users write) links to where the function is defined.
    links = re.findall(r'href="api/generated/([\w.]+)\.html#([\w.]+)"', questions)
    assert any(anchor.endswith(".critical_sigma_w2") for _, anchor in links), links
    for module, anchor in links:
        assert f'id="{anchor}"' in (html / "api" / "generated" / f"{module}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("x : array, shape (n, *input_shape)", r"x : array, shape (n, \*input_shape)"),
        ("(|chi_1 - 1| <= tol)", r"(\|chi_1 - 1\| <= tol)"),
        ("calls critical_ in place", r"calls critical\_ in place"),
        ("``(n, *shape)`` and :func:`critical_` stay", "``(n, *shape)`` and :func:`critical_` stay"),
        ("Xiao et al., *Dynamical Isometry* (2018)", "Xiao et al., *Dynamical Isometry* (2018)"),
        ("sigma_w2 * v_beta", "sigma_w2 * v_beta"),
    ],
)
def test_plain_text_notation_is_escaped_only_outside_markup(line, expected):
    conf = load_conf()
    assert conf.escape_plain_markup(line) == expected


def test_code_blocks_are_left_alone():
    conf = load_conf()
    lines = ["Example::", "", "    f(*args) | g", "", "Text with |x|.", ">>> f(*args)", "(1, *s)"]
    conf.escape_docstring(None, "function", "f", None, {}, lines)
    assert lines == ["Example::", "", "    f(*args) | g", "", r"Text with \|x\|.", ">>> f(*args)", "(1, *s)"]
