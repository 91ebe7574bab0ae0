"""The compression strategies: plain ``str -> str`` functions over one tool result's text.

Each is named for what it trims, does one thing, and returns its input unchanged
(the very same string) when it finds nothing to do, so the engine can tell which
strategies changed a message. They run in the order of ``STRATEGIES``; later ones see
the output of earlier ones (colour codes are gone before lines are compared).

What none of them may do is change meaning. Line-level strategies never drop or
rewrite a line that mentions an error, failure, assertion, warning, exception or
traceback (``KEYWORDS``): such a line survives as a terminal would show it (without
colour codes, after carriage-return overwrites, without trailing blanks), and only
identical copies right after it are folded into a count. JSON is the one
exception to "line by line": a tool result that is a JSON document is re-serialised
compactly, which keeps every key (in order) and every value but not the line breaks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "KEYWORDS",
    "STRATEGIES",
    "Strategy",
    "collapse_repeated_lines",
    "collapse_timestamped_repeats",
    "drop_pager_prompts",
    "group_grep_matches",
    "mentions_problem",
    "minify_json",
    "resolve_carriage_returns",
    "strip_ansi",
    "summarise_passing_tests",
    "trim_whitespace",
]

Strategy = Callable[[str], str]

#: words (in any case) that make a line one a model must see whole: never dropped or folded
KEYWORDS = ("error", "fail", "assert", "warn", "exception", "traceback", "panic", "fatal", "critical")


def mentions_problem(line: str) -> bool:
    """Whether ``line`` mentions an error, failure, assertion, warning, exception or traceback.

    Plain substring tests on the lower-cased line: several times faster than one
    case-insensitive regex alternation, and this runs on every line a strategy folds.
    """
    low = line.lower()
    return any(word in low for word in KEYWORDS)


#: the least run of similar lines worth folding into one line and a note
MIN_RUN = 3

#: how many leading lines tell what kind of output a text is (grep hits, a log)
HEAD_LINES = 5


def _head(text: str) -> list[str]:
    """The first ``HEAD_LINES`` lines: grep hits and log lines start at the top of their output."""
    return text[: 200 * HEAD_LINES].split("\n", HEAD_LINES)[:HEAD_LINES]


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences (colours, cursor moves, hyperlinks): a model sees no colour."""
    if "\x1b" not in text:
        return text
    return _ANSI.sub("", text)


def resolve_carriage_returns(text: str) -> str:
    """Keep what a terminal finally shows of a line redrawn with carriage returns (progress bars).

    ``\\r\\n`` is a line break and stays one; on a line redrawn with bare ``\\r`` only
    the last non-empty redraw is kept (each redraw of a progress bar or spinner
    repaints the whole line).
    """
    if "\r" not in text:
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        if "\r" in line:
            frames = [frame for frame in line.split("\r") if frame.strip()]
            lines[index] = frames[-1] if frames else ""
    result = "\n".join(lines)
    return result if result != text else text


_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)


def trim_whitespace(text: str) -> str:
    """Drop the blanks at the end of every line and the blank lines at the end of the text.

    No other line goes, blank or not: line numbers a model reads off a file (to
    patch it) or off a traceback stay right.
    """
    result = text
    if " \n" in result or "\t\n" in result or result.endswith((" ", "\t")):
        result = _TRAILING.sub("", result)
    if result.endswith("\n\n"):
        result = result.rstrip("\n") + "\n"
    return result if result != text else text


#: what more(1), less(1) and paging CLIs print between pages; case-sensitive, whole lines only,
#: so prose that merely says "press" or "more" is never touched
_PAGER_PROMPT = re.compile(
    r"^[ \t]*(?:-+ ?More ?-+(?: ?\(\d+%\))?(?: .*)?|\(END\)|lines \d+-\d+(?:/\d+)? (?:\d+%|\(END\))"
    r"|Press (?:RETURN|ENTER|SPACE) to continue\.*|--\s*[Pp]ress \S+ to continue\s*--)[ \t]*(?:\n|$)",
    re.MULTILINE,
)
#: substrings one of the prompts above contains (a cheap test before the regex)
_PAGER_HINTS = ("More", "(END)", " to continue")
_PAGER_LINES = re.compile(r"lines \d+-\d+")


def drop_pager_prompts(text: str) -> str:
    """Drop the prompts a pager prints between pages (``-- More --``, ``(END)``, ``lines 1-40/212``)."""
    hinted = any(hint in text for hint in _PAGER_HINTS) or _PAGER_LINES.search(text)
    if not hinted or not _PAGER_PROMPT.search(text):
        return text
    return _PAGER_PROMPT.sub("", text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key: compact re-serialisation would lose a value")
    return result


def minify_json(text: str) -> str:
    """Re-serialise a tool result that is one JSON document without insignificant whitespace.

    Key order and every value are kept (non-ASCII stays as is); a document with a
    duplicated key is left alone, since a dict would keep only one of them.
    """
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[" or stripped[-1] not in "}]":
        return text
    try:
        value = json.loads(stripped, object_pairs_hook=_no_duplicate_keys)
    except ValueError:
        return text
    result = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return result if result != text else text


_PERCENT = re.compile(r"\[\s*\d+%\]")


def _is_passing(line: str) -> bool:
    """A line reporting one passing test (pytest ``-v``, jest, go), and nothing a model must see whole."""
    if "PASSED" in line:
        head, _, tail = line.rpartition(" PASSED")
        tail = tail.strip()
        passing = "::" in head and " " not in head and (not tail or _PERCENT.fullmatch(tail) is not None)
    elif "✓" in line or "√" in line or "--- PASS: " in line:
        passing = line.lstrip().startswith(("✓ ", "√ ", "--- PASS: "))
    else:
        return False
    return passing and not mentions_problem(line)


def _passing_note(lines: list[str]) -> str:
    first = lines[0]
    if "::" in first:
        files: dict[str, int] = {}
        for line in lines:
            path = line.split("::", 1)[0]
            files[path] = files.get(path, 0) + 1
        where = ", ".join(f"{path} {count}" for path, count in files.items())
        return f"[{len(lines)} tests PASSED: {where}]"
    indent = first[: len(first) - len(first.lstrip())]
    return f"{indent}[{len(lines)} tests passed]"


def summarise_passing_tests(text: str) -> str:
    """Fold runs of passing-test lines (pytest ``PASSED``, jest ``✓``, go ``--- PASS``) into a count.

    Failures, errors, skips and every other line stay as they are; a pytest count
    names the test files the passing tests came from.
    """
    if "PASSED" not in text and "✓" not in text and "√" not in text and "--- PASS" not in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    index, changed = 0, False
    while index < len(lines):
        if not _is_passing(lines[index]):
            out.append(lines[index])
            index += 1
            continue
        end = index + 1
        while end < len(lines) and _is_passing(lines[end]):
            end += 1
        run = lines[index:end]
        if len(run) >= MIN_RUN:
            out.append(_passing_note(run))
            changed = True
        else:
            out.extend(run)
        index = end
    return "\n".join(out) if changed else text


def _grep_hit(line: str) -> tuple[str, str] | None:
    """``(path, "line:text")`` of a ``path:line:text`` hit (a relative path with a file extension)."""
    path, colon, rest = line.partition(":")
    if not colon or "/" not in path or " " in path or path.startswith("/"):
        return None
    number, colon, _ = rest.partition(":")
    if not colon or not number.isdigit() or "." not in path.rpartition("/")[2]:
        return None
    return path, rest


def group_grep_matches(text: str) -> str:
    """Print a run of ``path:line:text`` hits (grep -n, ripgrep) on one file under its path, once.

    The result reads like ``rg --heading``: the path on its own line, then ``line:text``
    for each hit. A lone hit stays as it was; a hit that mentions an error or a
    failure stays whole.
    """
    if not any(_grep_hit(line) for line in _head(text)):
        return text
    lines = text.split("\n")
    matches = [_grep_hit(line) for line in lines]
    out: list[str] = []
    index, changed = 0, False
    while index < len(lines):
        match = matches[index]
        if match is None:
            out.append(lines[index])
            index += 1
            continue
        path = match[0]
        end = index + 1
        while end < len(lines) and (following := matches[end]) is not None and following[0] == path:
            end += 1
        if end - index < 2:
            out.append(lines[index])
        else:
            out.append(path)
            for line, hit in zip(lines[index:end], matches[index:end], strict=True):
                assert hit is not None
                out.append(line if mentions_problem(line) else hit[1])
            changed = True
        index = end
    return "\n".join(out) if changed else text


def collapse_repeated_lines(text: str) -> str:
    """Fold a run of identical lines into the line and a count of its repeats."""
    lines = text.split("\n")
    out: list[str] = []
    index, changed = 0, False
    while index < len(lines):
        line = lines[index]
        end = index + 1
        while end < len(lines) and lines[end] == line:
            end += 1
        out.append(line)
        if end - index >= MIN_RUN and line.strip():
            out.append(f"[… the line above repeated {end - index - 1} more times]")
            changed = True
        else:
            out.extend(lines[index + 1 : end])
        index = end
    return "\n".join(out) if changed else text


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? ")


def collapse_timestamped_repeats(text: str) -> str:
    """Fold a run of log lines that differ only in their leading timestamp (health checks, heartbeats).

    The first line stays whole, the rest become a count and the last timestamp.
    Lines that mention an error or a warning are never folded.
    """
    if not any(_TIMESTAMP.match(line) for line in _head(text)):
        return text
    lines = text.split("\n")
    keys: list[str | None] = []
    stamps: list[str] = []
    for line in lines:
        match = _TIMESTAMP.match(line) if line[:4].isdigit() else None
        rest = line[match.end() :] if match is not None else ""
        if match is None or not rest or mentions_problem(rest):
            keys.append(None)
            stamps.append("")
        else:
            keys.append(rest)
            stamps.append(match.group().rstrip())
    out: list[str] = []
    index, changed = 0, False
    while index < len(lines):
        key = keys[index]
        end = index + 1
        if key is not None:
            while end < len(lines) and keys[end] == key:
                end += 1
        out.append(lines[index])
        if end - index >= MIN_RUN:
            out.append(f"[… {end - index - 1} more of the line above, the last at {stamps[end - 1]}]")
            changed = True
        else:
            out.extend(lines[index + 1 : end])
        index = end
    return "\n".join(out) if changed else text


#: every strategy, in the order they run (the order of ``Compression.strategies`` too)
STRATEGIES: Mapping[str, Strategy] = {
    strategy.__name__: strategy
    for strategy in (
        strip_ansi,
        resolve_carriage_returns,
        trim_whitespace,
        drop_pager_prompts,
        minify_json,
        summarise_passing_tests,
        group_grep_matches,
        collapse_repeated_lines,
        collapse_timestamped_repeats,
    )
}
