"""Every shell block of the README, run in order as a reader types them into one terminal, against a
real ``observatory serve`` on a new user's data folder: no command may fail, no curl may get an
HTTP error status. The only text changed is the server's address; values the reader would copy
(tokens, ids) the README keeps in shell variables.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import httpx
import pytest
from skimage import data as samples

from tests.support.shell_blocks import (BlockFailed, BlockRefused, ShellBlock, check_curls, reader_session,
                                        run_shell_blocks, shell_blocks)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_ADDRESS = "http://127.0.0.1:8000"

def make_photo(path: Path) -> None:
    """The reader's own photo: scikit-image's cat, as a JPEG."""
    assert cv2.imwrite(str(path), cv2.cvtColor(samples.chelsea(), cv2.COLOR_RGB2BGR))


@pytest.mark.slow  # about 45 s: a dozen CLI commands, each starting the engine
def test_the_readme_runs_as_written(tmp_path):
    blocks = shell_blocks(README)
    assert sum(block.not_run is None for block in blocks) >= 4, "the README's submit, HTTP and walk blocks run"
    with reader_session(tmp_path, ROOT) as session:
        make_photo(tmp_path / "fox.jpg")
        run = run_shell_blocks(blocks, cwd=session.cwd, env=session.env, replace={README_ADDRESS: session.base})
        api = f"{session.base}/api/v1"

        # what the reader saw: the draft stored (201), its retry answered with it (200); the anonymous
        # list holds what was published
        assert "\n201\n200\n" in run.stdout
        public = httpx.get(f"{api}/projects/demo/observations", params={"limit": 200}).json()["items"]
        notes = [o["fields"].get("note") for o in public]  # the walk's moderate-many published the rest
        assert notes.count("the fox again") == 1, "the retry stored no second observation"
        assert notes.count("a fox by the pond") == 1
        assert all(o.get("contributor_id") is None for o in public)
        # the walk ran too: its CSV import was published, and Ben's data came down before the erasure
        assert "under the hedge by the school" in notes
        assert (tmp_path / "ben-data.zip").stat().st_size > 0


def test_a_failing_command_is_named_by_block_and_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n\n```sh\nA=1\necho $A\n```\n\ntext\n\n```console\n$ echo ok\nok\n$ ls \\\n"
                    "  no-such-file\n```\n", encoding="utf-8")
    with pytest.raises(BlockFailed, match=r"page.md, the console block at line 10, line 14 .*exit status 2"):
        run_shell_blocks(shell_blocks(page), cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})


def test_a_failure_inside_a_helper_or_an_unset_variable_is_named_where_the_page_has_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh\nfirst() { head -c1 \"$1\"; }\necho start\nX=$(echo x \\\n  | first no-such-file)\n```\n"
                    "```sh\necho $NEVER_SET\n```\n", encoding="utf-8")
    with pytest.raises(BlockFailed, match=r"line 5 \(`X=\$\(echo x \| first no-such-file\)`\), exit status 1"):
        run_shell_blocks(shell_blocks(page), cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    with pytest.raises(BlockFailed, match=r"the sh block at line 7, line 8 \(`echo \$NEVER_SET`\)"):
        run_shell_blocks(shell_blocks(page)[1:], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})


def test_an_http_error_fails_the_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh\ncurl -fsS http://127.0.0.1:1/nothing-listens\necho not reached\n```\n", encoding="utf-8")
    with pytest.raises(BlockFailed, match=r"line 2 .*exit status 7") as failed:
        run_shell_blocks(shell_blocks(page), cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert "not reached" not in str(failed.value)


def test_a_curl_that_would_pass_an_http_error_is_refused():
    block = ShellBlock(README, 1, "sh", ((2, "X=$(curl -s http://h/x -H 'a: b' | json '[\"id\"]')"),), None)
    with pytest.raises(BlockRefused, match="curl without --fail"):
        check_curls(block)
    for flags in ("-fsS", "-sf", "--fail", "--fail-with-body -s"):
        check_curls(ShellBlock(README, 1, "sh", ((2, f"curl {flags} -F media=@x.jpg http://h/x"),), None))


def test_a_block_left_out_says_why(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- not run: needs a printer -->\n```sh\nlp page\n```\n\n<!-- not run: -->\n```bash\nx\n```\n",
                    encoding="utf-8")
    with pytest.raises(BlockRefused, match="line 6: '<!-- not run: -->' needs a reason"):
        shell_blocks(page)
    page.write_text("<!-- not run: needs a printer -->\n\n```sh\nlp page\n```\n```yaml\na: 1\n```\n", encoding="utf-8")
    assert [(b.not_run, b.lines) for b in shell_blocks(page)] == [("needs a printer", ((4, "lp page"),))]
    run_shell_blocks(shell_blocks(page), cwd=tmp_path, env={})  # lp is not run: no failure
