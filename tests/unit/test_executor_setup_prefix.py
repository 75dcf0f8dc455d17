"""The set-up line sent with a session's first block never shows in what the model reads."""

from __future__ import annotations

from autogen_aca_sessions.executor._setup_prefix import (
    SETUP_LINE,
    compile_failed,
    prefixed,
    unprefixed_text,
)

TRACEBACK = (
    "---------------------------------------------------------------------------\n"
    "ZeroDivisionError                         Traceback (most recent call last)\n"
    "Cell In[1], line 4\n"
    f"      1 {SETUP_LINE}\n"
    "      2 x = 1\n"
    "      3 y = 2\n"
    "----> 4 1/0\n"
    "      5 z=3\n"
    "\n"
    "File /usr/lib/python3/lib.py:12, in f()\n"
    "     11 def f():\n"
    "---> 12     return 1/0\n"
    "\n"
    "ZeroDivisionError: division by zero\n"
)


def test_a_block_gets_the_setup_as_its_first_line() -> None:
    assert prefixed("x = 1\nx") == SETUP_LINE + "\nx = 1\nx"


def test_blocks_that_must_start_their_cell_are_not_prefixed() -> None:
    assert prefixed("from __future__ import annotations\nx = 1") is None
    assert prefixed("%%time\nx = 1") is None
    assert prefixed("# a comment\nfrom  __future__ import division") is None
    assert prefixed("\n    x = 1\n    x") is None  # IPython dedents the whole cell


def test_the_cell_frame_is_renumbered_and_the_setup_line_dropped() -> None:
    text = unprefixed_text(TRACEBACK)
    assert SETUP_LINE not in text
    assert "Cell In[1], line 3\n      1 x = 1\n      2 y = 2\n----> 3 1/0\n      4 z=3\n" in text


def test_frames_of_other_files_keep_their_line_numbers() -> None:
    text = unprefixed_text(TRACEBACK)
    assert "File /usr/lib/python3/lib.py:12, in f()\n     11 def f():\n---> 12     return 1/0\n" in text


def test_a_syntax_error_location_is_the_blocks_own() -> None:
    assert unprefixed_text(
        "  Cell In[2], line 2\n    x = (1\n          ^\nSyntaxError: incomplete input\n"
    ) == ("  Cell In[2], line 1\n    x = (1\n          ^\nSyntaxError: incomplete input\n")
    assert (
        unprefixed_text("incomplete input (925017759.py, line 2)")
        == "incomplete input (925017759.py, line 1)"
    )


def test_only_compile_errors_mean_the_setup_did_not_run() -> None:
    assert compile_failed("SyntaxError")
    assert compile_failed(None, "IndentationError: unexpected indent (1.py, line 1)")
    assert compile_failed(
        None, None, "  Cell In[4], line 1\n    x = (1\n          ^\nSyntaxError: incomplete input\n"
    )
    assert not compile_failed("ZeroDivisionError", "ZeroDivisionError: division by zero", TRACEBACK)
    assert not compile_failed(None, None, None)


def test_text_without_a_cell_frame_is_unchanged() -> None:
    assert unprefixed_text("plain output\n") == "plain output\n"
    assert unprefixed_text("") == ""
