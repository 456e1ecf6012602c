"""Run a Markdown page's shell blocks as a reader types them: in order, in one bash session, against
a real ``observatory serve``; a failure names the page, the block and the line.

    blocks = shell_blocks(Path("README.md"))
    with reader_session(tmp_path, ROOT) as session:      # a new user's folder and a running engine
        run_shell_blocks(blocks, cwd=session.cwd, env=session.env,
                         replace={"http://127.0.0.1:8000": session.base})

The rule: every ```sh, ```bash and ```console block runs, unless the line before its fence (blank
lines aside) is ``<!-- not run: REASON -->``. In a console block only the ``$ `` lines (and the
lines they continue with a backslash) are commands; the rest is output. Every ``curl`` in a block
that runs must carry ``-f``/``--fail``/``--fail-with-body``, so an HTTP error status is a failing
exit status; the blocks run under ``set -euo pipefail``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.serving import HOST, ServerDidNotStart, free_port, wait_until_healthy

SHELL_LANGUAGES = ("sh", "bash", "console")
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
_FAILED = "__shell_block_failed__"


@dataclass(frozen=True)
class ShellBlock:
    """One fenced shell block of a page; ``lines`` are its commands with their line numbers in the page."""

    page: Path
    start: int  # line of the opening fence
    language: str
    lines: tuple[tuple[int, str], ...]
    not_run: str | None  # the reason given, for a block marked <!-- not run: ... -->

    @property
    def where(self) -> str:
        return f"{self.page.name}, the {self.language} block at line {self.start}"


class BlockFailed(AssertionError):
    """A command of a block exited non-zero (or the run timed out)."""


class BlockRefused(AssertionError):
    """A block breaks the rule (a curl without --fail, a not-run marker without its reason)."""


def shell_blocks(page: Path) -> list[ShellBlock]:
    """Every shell block of ``page``, in order, those marked not run included (with their reason)."""
    blocks: list[ShellBlock] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        opened = _FENCE.match(lines[number])
        number += 1
        if not opened:
            continue
        body_start = number
        while number < len(lines) and lines[number].rstrip() != "```":
            number += 1
        language = opened.group(1)
        if language in SHELL_LANGUAGES:
            body = [(i + 1, lines[i]) for i in range(body_start, number)]
            if language == "console":
                body = _console_commands(body)
            reason = _not_run_reason(page, lines, body_start - 1)
            blocks.append(ShellBlock(page, body_start, language, tuple(body), reason))
        number += 1
    return blocks


def section_blocks(page: Path, heading: str) -> list[ShellBlock]:
    """The blocks to run of one section of ``page``: from the line ``heading`` (e.g.
    ``## From first launch to results``) to the next ``## `` heading, those marked not run left out."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading) + 1
    end = next((n for n in range(start, len(lines)) if lines[n].startswith("## ")), len(lines)) + 1
    return [b for b in shell_blocks(page) if start <= b.start <= end and b.not_run is None]


def _not_run_reason(page: Path, lines: list[str], fence: int) -> str | None:
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    marker = _NOT_RUN.match(lines[before].strip()) if before >= 0 else None
    if marker is None:
        return None
    if not marker.group("reason"):
        raise BlockRefused(f"{page.name}, line {before + 1}: '<!-- not run: -->' needs a reason")
    return marker.group("reason")


def _console_commands(body: list[tuple[int, str]]) -> list[tuple[int, str]]:
    commands, continued = [], False
    for number, text in body:
        if continued or text.startswith("$ "):
            commands.append((number, text if continued else text[2:]))
            continued = text.endswith("\\")
    return commands


def check_curls(block: ShellBlock) -> None:
    """Refuse a curl that would exit 0 on an HTTP error status."""
    script = "\n".join(text for _, text in block.lines)
    for command in re.split(r"[|;&\n]|\$\(", script.replace("\\\n", " ")):
        try:
            words = shlex.split(command, comments=True)
        except ValueError:  # a quote closed on a later line: look at the words before it
            words = command.split()
        if "curl" in words and not any(_is_fail_flag(w) for w in words[words.index("curl"):]):
            raise BlockRefused(f"{block.where}: curl without --fail (an HTTP error would pass): {command.strip()}")


def _is_fail_flag(word: str) -> bool:
    return word in ("--fail", "--fail-with-body") or bool(re.fullmatch(r"-[a-zA-Z]*f[a-zA-Z]*", word))


@dataclass(frozen=True)
class ShellRun:
    stdout: str
    stderr: str


def run_shell_blocks(
    blocks: Sequence[ShellBlock],
    *,
    cwd: Path,
    env: Mapping[str, str],
    replace: Mapping[str, str] | None = None,
    timeout_s: float = 300.0,
) -> ShellRun:
    """Run the blocks not marked not run, in one bash session (variables carry from block to block).

    ``replace``: text swapped in every command before it runs (the server's address, nothing else).
    Raises BlockRefused before running anything when a block breaks the rule, BlockFailed naming the
    page, block, line and command of the first failure."""
    chosen = [block for block in blocks if block.not_run is None]
    for block in chosen:
        check_curls(block)
    # the trap fires in functions and subshells too: the top level's report (subshell 0, no function) is the one
    script = [f"set -eEuo pipefail\ntrap 'echo \"{_FAILED} $? $LINENO $BASH_SUBSHELL ${{FUNCNAME[0]:-}}\" >&2' ERR"]
    origin: dict[int, tuple[ShellBlock, int]] = {}
    for block in chosen:
        for number, text in block.lines:
            for old, new in (replace or {}).items():
                text = text.replace(old, new)
            script.append(text)
            origin[len(script) + 1] = (block, number)  # the header is two lines
    try:
        done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=dict(env), capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BlockFailed(f"the shell blocks of {chosen[0].page.name} ran past {timeout_s:g} s:\n"
                          f"{_tail(exc.stdout)}\n{_tail(exc.stderr)}") from None
    if done.returncode == 0:
        return ShellRun(done.stdout, done.stderr)
    raise BlockFailed(_failure(done, origin))


def _failure(done: subprocess.CompletedProcess[str], origin: dict[int, tuple[ShellBlock, int]]) -> str:
    top = re.findall(rf"^{_FAILED} (\d+) (\d+) 0 $", done.stderr, re.M)
    stderr = re.sub(rf"^{_FAILED} .*\n?", "", done.stderr, flags=re.M)
    # no trap for what bash itself refuses (an unset variable under set -u): its own message names the line
    found = [(int(top[-1][0]), int(top[-1][1]))] if top else \
        [(done.returncode, int(n)) for n in re.findall(r"^bash: line (\d+): ", stderr, re.M)[-1:]]
    where = "a command"
    for status, line in found:
        block, number = origin.get(line, (None, 0))
        if block is not None:
            where = f"{block.where}, line {number} (`{_statement(block, number)}`), exit status {status}"
    return (f"{where} failed (bash exit status {done.returncode})\n--- stdout (tail)\n{_tail(done.stdout)}\n"
            f"--- stderr (tail)\n{_tail(stderr)}")


def _statement(block: ShellBlock, number: int) -> str:
    """The line, with the lines it continues (a backslash at their end) before it."""
    lines = dict(block.lines)
    first = number
    while lines.get(first - 1, "").endswith("\\"):
        first -= 1
    return " ".join(lines[n].strip().rstrip("\\").strip() for n in range(first, number + 1))


def _tail(text: str | bytes | None, size: int = 3000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-size:]


@dataclass(frozen=True)
class ReaderSession:
    cwd: Path  # the reader's folder (their checkout, in effect)
    env: dict[str, str]  # what their shell has: the virtual environment's bin first on PATH
    base: str  # the running engine, http://127.0.0.1:PORT


def reader_env(data_dir: Path, root: Path) -> dict[str, str]:
    """This process's environment without any OBSERVATORY_* setting (a new user has none) but the data
    folder and the checkout's registry.yaml, with the virtual environment's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_") and k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OBSERVATORY_DATA_DIR"] = str(data_dir)
    env["OBSERVATORY_REGISTRY_PATH"] = str(root / "registry.yaml")
    return env


@contextmanager
def reader_session(folder: Path, root: Path, copy: Sequence[str] = ("docs/examples",)) -> Iterator[ReaderSession]:
    """``observatory serve`` (API and worker, embedded defaults) on a free port, its data under
    ``folder``/var; ``copy``: folders of the checkout the page's commands read, copied into ``folder``."""
    for relative in copy:
        shutil.copytree(root / relative, folder / relative)
    env = reader_env(folder / "var", root)
    port = free_port()
    log = (folder / "serve.log").open("w+")
    # a session of its own: the worker that serve starts goes down with it
    process = subprocess.Popen(["observatory", "serve", "--port", str(port)], cwd=folder, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{HOST}:{port}"
    try:
        try:
            wait_until_healthy(base, process)
        except ServerDidNotStart as exc:
            log.seek(0)
            raise ServerDidNotStart(f"{exc}:\n{log.read()[-4000:]}") from None
        yield ReaderSession(folder, env, base)
    finally:
        _stop(process)
        log.seek(0)
        print(f"observatory serve's log (tail):\n{log.read()[-4000:]}")  # pytest shows it when a test fails
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop serve, then whatever is left of the process group it led (its worker, orphaned if serve
    gave up waiting for it): SIGTERM, and SIGKILL for what still runs after a grace period."""
    process.terminate()
    try:
        process.wait(timeout=45)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
    for sig, grace_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while _group_runs(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _group_runs(process.pid):
            return


def _group_runs(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies waiting to be reaped do not count)."""
    proc = Path("/proc")
    if not proc.exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        try:
            # /proc/PID/stat: pid (comm) state ppid pgrp ...; comm may hold spaces, so split after ')'
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
