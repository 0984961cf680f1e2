"""The READMEs and the pages of docs/ are run as written: every command and snippet, with its shown output.

How a document is run (the rules a writer follows):
- ```bash blocks run in order, each as one `bash -e` script, in one empty folder per document that holds
  `.venv` (the project's virtual environment) and `data/` (small CIFAR-10, MNIST and FashionMNIST files in
  their real formats). The shell is a fresh one: the venv is not on PATH until a block says
  `source .venv/bin/activate`; every later block starts activated, as the reader's shell would be. A page
  starts empty: what its blocks need (the venv activated, a run to read) it makes in blocks the reader sees.
- A ```text block right after a bash block is its output (stdout and stderr together), matched as a doctest:
  `...` matches anything, and runs of whitespace are equal.
- ```python blocks run in order in one namespace per document; ```pycon blocks are doctests in it.
- `<!-- docs: file NAME -->` right before a block writes it to NAME instead of running it;
  `<!-- docs: exit N -->` says the bash block exits with N; `<!-- docs: skip REASON -->` leaves a block out
  (what cannot run offline or in a test); `<!-- docs: setup -->` marks the README's set-up command.
- A translation has the same blocks, in the same order, as its original: it is checked block for block here
  and run once, with its original. TRANSLATIONS lists every pair; the READMEs stay short and link every page.
"""

from __future__ import annotations

import doctest
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tests.conftest import write_cifar10, write_mnist

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    "tutorial",
    "configs",
    "runs",
    "sweeps",
    "data",
    "devices",
    "security",
    "performance",
    "contributing",
]
TRANSLATIONS = {"README.md": "README.zh.md", **{f"docs/{page}.md": f"docs/{page}.zh.md" for page in PAGES}}
README_LINES = 200  # the README on one screen or two; the rest is in docs/
MATCHING = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
DIRECTIVE = re.compile(r"<!-- docs: (\w+)\s*(.*?)\s*-->")
ACTIVATE = re.compile(r"^\s*source \.venv/bin/activate\s*$", re.M)


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int
    directive: str = ""  # file, exit, skip or setup
    argument: str = ""
    output: str | None = None  # the text block shown right after a bash block

    @property
    def where(self) -> str:
        return f"line {self.line}"

    @property
    def content(self) -> tuple[str, ...]:
        """All but the line: what a translation keeps."""
        return (self.lang, self.code, self.directive, self.argument, self.output or "")


def blocks(document: str) -> list[Block]:
    """The fenced blocks of a Markdown file, each with its directive and shown output."""
    tokens = MarkdownIt().parse((ROOT / document).read_text())
    found: list[Block] = []
    directive = ("", "")
    for index, token in enumerate(tokens):
        if token.type == "html_block" and (match := DIRECTIVE.search(token.content)):
            directive = (match[1], match[2])
            continue
        if token.type != "fence":
            directive = ("", "") if token.type.endswith("_open") else directive
            continue
        lang = token.info.split()[0] if token.info else ""
        line = (token.map or [0])[0] + 1
        follows_bash = index > 0 and tokens[index - 1].type == "fence" and found[-1].lang == "bash"
        if lang == "text" and follows_bash and found[-1].directive != "skip":
            found[-1] = replace(found[-1], output=token.content)
        else:
            found.append(Block(lang, token.content, line, *directive))
        directive = ("", "")
    return found


def shell_env() -> dict[str, str]:
    """A new shell's environment: the venv is not active (SwanLab's home is the test's own)."""
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    keep = ("HOME", "LANG", "SWANLAB_ROOT", "USER")
    return {"PATH": path, **{key: os.environ[key] for key in keep if key in os.environ}}


def run_bash(block: Block, folder: Path, activated: bool) -> str:
    script = ("source .venv/bin/activate\n" if activated else "") + block.code
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=folder,
        env=shell_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=600,
    )
    expected = int(block.argument) if block.directive == "exit" else 0
    status = 128 - done.returncode if done.returncode < 0 else done.returncode  # killed: as a shell says it
    assert status == expected, f"{block.where}: exit {status}\n{block.code}\n{done.stdout}"
    return done.stdout


def matches(block: Block, got: str) -> None:
    assert block.output is not None
    checker = doctest.OutputChecker()
    if not checker.check_output(block.output, got, MATCHING):
        example = doctest.Example(block.code, block.output)
        pytest.fail(f"{block.where}: {checker.output_difference(example, got, MATCHING)}")


def run_pycon(block: Block, namespace: dict[str, Any], document: str) -> None:
    test = doctest.DocTestParser().get_doctest(block.code, namespace, document, document, block.line)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=MATCHING)
    runner.run(test, out=report.write, clear_globs=False)
    assert runner.failures == 0, report.getvalue()
    namespace.update(test.globs)  # doctest ran on a copy: what it defined is there for the next blocks


def run_document(document: str, folder: Path) -> None:
    (folder / ".venv").symlink_to(sys.prefix)
    write_cifar10(folder / "data")
    write_mnist(folder / "data")
    write_mnist(folder / "data", name="FashionMNIST")
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    activated = False
    for block in blocks(document):
        if block.directive == "skip":
            continue
        if block.directive == "file":
            (folder / block.argument).write_text(block.code)
        elif block.directive == "setup":
            run_bash(replace(block, code=after_set_up(block.code)), folder, activated)
        elif block.lang == "bash":
            shown = run_bash(block, folder, activated)
            if block.output is not None:
                matches(block, shown)
            activated = activated or bool(ACTIVATE.search(block.code))
        elif block.lang == "python":
            exec(compile(block.code, f"{document}:{block.line}", "exec"), namespace)
        elif block.lang == "pycon":
            run_pycon(block, namespace, document)
        else:
            assert block.lang == "text", (
                f"{document} {block.where}: a {block.lang!r} block the test cannot run"
            )


SET_UP = ["python3 -m venv .venv", ".venv/bin/pip install -e ."]


def after_set_up(command: str) -> str:
    """The README's set-up command less the set-up itself, which is what `.ci/run` does (checked below)."""
    steps = [step.strip() for step in command.strip().split("&&")]
    assert steps[: len(SET_UP)] == SET_UP, command
    return " && ".join(steps[len(SET_UP) :])


def test_the_quick_start_sets_up_what_ci_sets_up() -> None:
    (set_up,) = [block for block in blocks("README.md") if block.directive == "setup"]
    (test_command,) = [block for block in blocks("README.md") if block.code.strip() == ".ci/run"]
    assert blocks("README.md").index(set_up) == 0 and test_command.directive == "skip"
    ci = (ROOT / ".ci" / "run").read_text()
    assert (
        "python3 -m venv .venv" in ci and "pip install --quiet --disable-pip-version-check -e '.[dev]'" in ci
    )
    assert after_set_up(set_up.code).startswith(".venv/bin/")  # runs in a fresh shell, venv not active


@pytest.mark.parametrize("original", TRANSLATIONS)
def test_a_translation_has_the_same_blocks_and_links_its_original(original: str) -> None:
    translation = TRANSLATIONS[original]
    assert [block.content for block in blocks(translation)] == [block.content for block in blocks(original)]
    top = "\n".join((ROOT / original).read_text().splitlines()[:4])
    top_zh = "\n".join((ROOT / translation).read_text().splitlines()[:4])
    assert f"({Path(translation).name})" in top and f"({Path(original).name})" in top_zh


def test_the_readmes_are_short_and_link_every_page() -> None:
    for readme, pages in (("README.md", TRANSLATIONS), ("README.zh.md", TRANSLATIONS.values())):
        text = (ROOT / readme).read_text()
        assert len(text.splitlines()) <= README_LINES, (
            f"{readme}: over {README_LINES} lines; move it to docs/"
        )
        unlinked = [page for page in pages if page.startswith("docs/") and f"({page})" not in text]
        assert not unlinked, f"{readme} links no {unlinked}"


def test_every_block_is_one_the_test_knows() -> None:
    for document in [*TRANSLATIONS, *TRANSLATIONS.values()]:
        for block in blocks(document):
            assert block.lang in ("bash", "python", "pycon", "text") or block.directive in ("skip", "file"), (
                f"{document} {block.where}: {block.lang!r}"
            )
            if block.directive == "skip":
                assert block.argument, f"{document} {block.where}: say why it is skipped"


@pytest.mark.slow
@pytest.mark.parametrize("document", TRANSLATIONS)
def test_every_command_and_snippet_runs_as_shown(document: str, in_tmp_path: Path) -> None:
    run_document(document, in_tmp_path)
