"""Sphinx configuration: the Markdown pages of docs/ as the narrative part, an API reference from the docstrings.

Build (warnings are errors): ``sphinx-build -W --keep-going -b html docs docs/_build/html``; needs the ``docs`` extra
(``pip install -e '.[docs]'``). The API pages under ``docs/api/`` (ignored by git) are generated here, at every
build, from the modules found on disk (every public module of ``meanfield``, ``rmt``, ``validate`` and ``figures``;
``__main__`` and ``_private`` modules are skipped, so no command-line entry point runs). Importing the modules runs no
computation.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the checkout this file belongs to, not whatever copy of the packages is installed.
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

PACKAGES = {
    "meanfield": "Mean-field theory: activations, Gaussian expectations, fixed points, depth scales, CNN covariances.",
    "rmt": "Random-matrix theory: Jacobian spectra, conv operators, orthogonal kernels, Procrustes, batch norm.",
    "validate": "PyTorch networks that check the theory: initializers, models, data, batched training, experiments.",
    "figures": "Every figure of the toolkit, ``python -m figures``.",
}

project = "sigprop-theory"
author = "sigprop-theory contributors"
copyright = "sigprop-theory contributors"  # noqa: A001 (the name Sphinx reads)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# Markdown: GitHub-style anchors for "#section" links, dollar maths left as text.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# autodoc / autosummary
autosummary_generate = True
autosummary_imported_members = False
# Every public name defined in a module is listed, whether or not a (possibly stale) __all__ names it or it has a
# docstring yet.
autodoc_default_options = {"show-inheritance": True, "ignore-module-all": True, "undoc-members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

# numpydoc: the class pages list their members through autodoc, not through numpydoc's autosummary tables.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = "sigprop-theory"
html_theme_options = {"page_width": "1200px", "sidebar_width": "260px"}


def public_modules(package: str) -> list[str]:
    """Dotted names of the public submodules of ``package`` found on disk, each imported once, in sorted order.

    Importing them here, in a fixed order, makes the build independent of the order in which Sphinx happens to
    read the pages; a module that fails to import stops the build with its own error.
    """
    pkg = importlib.import_module(package)
    names = []
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue  # __main__ (runs a command line on import) and private modules
        names.append(info.name)
    for name in sorted(names):
        importlib.import_module(name)
    return sorted(names)


def public_api(package: str) -> list[str]:
    """``module.name`` of each function and class the package exports at its top level, where it is defined."""
    pkg = importlib.import_module(package)
    exported = getattr(pkg, "__all__", None) or [n for n in vars(pkg) if not n.startswith("_")]
    targets = []
    for name in exported:
        obj = getattr(pkg, name, None)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        module = getattr(obj, "__module__", "") or ""
        if module.split(".")[0] != package or module.split(".")[-1].startswith("_"):
            continue
        targets.append(f"{module}.{obj.__qualname__}")
    return targets


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it already holds it (keeps Sphinx's incremental build incremental)."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_api_pages(app=None, config=None) -> None:
    """Generate ``docs/api/index.rst`` and one page per package (autosummary makes one page per module).

    Runs on ``config-inited``, before Sphinx lists the source files; the arguments are unused.
    """
    api = DOCS / "api"
    api.mkdir(exist_ok=True)
    index = [
        "API reference",
        "=============",
        "",
        "Generated from the docstrings. Each package page lists what the package exports at its top level, then",
        "every module; each module page documents its public functions and classes.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
        *(f"   {package}" for package in PACKAGES),
        "",
    ]
    write_if_changed(api / "index.rst", "\n".join(index))
    modules = {package: public_modules(package) for package in PACKAGES}
    generated = api / "generated"  # autosummary's module pages: drop those of modules that no longer exist
    current = {module for names in modules.values() for module in names}
    for stale in generated.glob("*.rst") if generated.is_dir() else ():
        if stale.stem not in current:
            stale.unlink()
    for package, summary in PACKAGES.items():
        lines = [f"``{package}``", "=" * (len(package) + 4), "", summary, "", f".. automodule:: {package}", ""]
        # Entries are relative to the package (automodule made it the current module).
        exported = public_api(package)
        if exported:
            lines += ["Exported at the top level", "-" * 25, "", ".. autosummary::", "   :nosignatures:", ""]
            lines += [f"   {target.removeprefix(package + '.')}" for target in exported]
            lines.append("")
        lines += ["Modules", "-------", "", ".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {module.removeprefix(package + '.')}" for module in modules[package]]
        lines.append("")
        write_if_changed(api / f"{package}.rst", "\n".join(lines))



def resolve_reexport(app, env, node, contnode):
    """Resolve a Python cross-reference to a re-exported name (``meanfield.q_star``) where it is defined.

    The API pages document each object once, in its defining module; references written the way users import
    (``meanfield.q_star``, ``rmt.jacobian_spectrum``) are redirected there instead of being left unresolved.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    package = target.split(".")[0]
    if package not in PACKAGES or "." not in target:
        return None
    module_name, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None
    defined = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
    if defined == target or not defined.startswith(f"{package}."):
        return None
    new = node.deepcopy()
    new["reftarget"] = defined
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node.get("refdoc"), app.builder, node.get("reftype"), defined, new, contnode)


# Plain-text notation of the docstrings that reStructuredText would read as markup: a star-unpacked shape such as
# ``(n, *input_shape)`` (emphasis), an absolute value ``|chi_1 - 1|`` (substitution) and a name ending in ``_``
# outside backticks (a hyperlink reference, e.g. the in-place initializers ``critical_``). Escaped outside literals,
# roles and code blocks, so the text renders exactly as written; everything else is left to reStructuredText.
_LITERAL = re.compile(r"(``.+?``|`[^`]*`)")
_PLAIN_MARKUP = re.compile(r"(?<![\w*\\])\*(?=[A-Za-z_][\w.]*[,)\]])|(?<!\\)\||(?<=[A-Za-z0-9])_(?=[\s.,;:)]|$)")


def escape_plain_markup(line: str) -> str:
    """``line`` with the plain-text notation above escaped outside its inline literals and roles."""
    if line.lstrip().startswith("|"):
        return line  # a line block or table row
    parts = _LITERAL.split(line)
    parts[::2] = [_PLAIN_MARKUP.sub(lambda m: "\\" + m.group(0), part) for part in parts[::2]]
    return "".join(parts)


def escape_docstring(app, what, name, obj, options, lines):
    """``autodoc-process-docstring`` handler: apply :func:`escape_plain_markup` to prose lines in place."""
    block_indent = None  # indentation of the line that opened a literal (``::``) or doctest block
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if not stripped or indent > block_indent or stripped.startswith((">>>", "...")):
                continue
            block_indent = None
        if stripped.startswith(">>>"):
            block_indent = indent - 1
            continue
        lines[i] = escape_plain_markup(line)
        if stripped.endswith("::"):
            block_indent = indent


def add_unlisted_pages(app, docname, source):
    """``source-read`` handler: put every Markdown page of docs/ that index.md does not name into its toctree.

    They go just before the API reference entry (``api/index``), in alphabetical order, so a new page never breaks
    the build with "document isn't included in any toctree" and never needs an edit of index.md to be reachable.
    """
    if docname != root_doc:
        return
    text = source[0]
    listed = {line.strip() for line in text.splitlines()}
    missing = sorted(page.stem for page in DOCS.glob("*.md") if page.stem not in listed and page.stem != root_doc)
    if missing:
        source[0] = text.replace("\napi/index\n", "\n" + "".join(f"{name}\n" for name in missing) + "api/index\n", 1)


def reread_index(app, env, added, changed, removed):
    """``env-get-outdated`` handler: read index.md at every build, so pages added since the last one are listed."""
    return [root_doc]


def setup(app):
    # The one-line summaries of autosummary's tables end at the first full stop that is not a known abbreviation;
    # the docstrings cite "Eq. 5", "eqn. 2.3", "Sec. 4", "Fig. S4", "Alg. 1".
    from sphinx.ext import autosummary

    citing = ("Eq.", "eq.", "Eqs.", "eqs.", "eqn.", "eqns.", "Sec.", "sec.", "Fig.", "Figs.", "Alg.", "approx.")
    autosummary.WELL_KNOWN_ABBREVIATIONS = tuple(dict.fromkeys(autosummary.WELL_KNOWN_ABBREVIATIONS + citing))
    app.connect("source-read", add_unlisted_pages)
    app.connect("env-get-outdated", reread_index)
    app.connect("config-inited", write_api_pages)
    app.connect("missing-reference", resolve_reexport)
    app.connect("autodoc-process-docstring", escape_docstring, priority=600)
