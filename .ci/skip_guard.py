"""CI must not pass by skipping: record every skipped test, then fail on any skip the allow-list does not
explain.

Two uses, one file (standard library only):

* a pytest plugin, loaded by ``.ci/run`` with ``-p skip_guard --skip-report=PATH`` (``.ci`` on PYTHONPATH). It
  writes every skipped or xfailed test (and every skipped collection, e.g. a module-level skip or a
  parametrize with an empty parameter set) to ``PATH`` as JSON: the node id and the reason exactly as the test
  gave it;
* a checker: ``python .ci/skip_guard.py check REPORT ALLOWLIST`` prints each skip that no allow-list entry
  matches and exits 1 if there is one (2 for an unreadable report or a malformed allow-list).

Allow-list format (``.ci/allowed-skips.txt``), one entry a line, blank lines and ``#`` lines ignored::

    NODEID_PATTERN [| REASON_PATTERN]  # why this skip is legitimate (required)

A pattern matches the whole node id (or reason); ``*`` is the only wildcard and stands for any run of
characters. Everything else is literal, so ``[``, ``]``, ``?``, ``.``, ``/`` and ``\\`` in parametrize ids and
in reasons that quote paths match themselves (fnmatch would read ``[...]`` as a character class).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPORT_VERSION = 1


# --------------------------------------------------------------------------------------------------
# pytest plugin
# --------------------------------------------------------------------------------------------------
_SKIPS: list[dict] = []


def pytest_addoption(parser):
    parser.addoption(
        "--skip-report",
        metavar="PATH",
        default=None,
        help="write every skipped/xfailed test (node id, reason) to PATH as JSON (terralab's CI skip guard)",
    )


def _reason(report) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}".rstrip(": ")
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, lineno, "Skipped: reason")
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    return text.removeprefix("Skipped: ")


def _location(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return f"{longrepr[0]}:{longrepr[1]}"
    return ""


def pytest_runtest_logreport(report):
    if report.skipped:
        _SKIPS.append(
            {
                "nodeid": report.nodeid,
                "when": report.when,
                "reason": _reason(report),
                "location": _location(report),
            }
        )


def pytest_collectreport(report):
    if report.skipped:
        _SKIPS.append(
            {
                "nodeid": report.nodeid,
                "when": "collect",
                "reason": _reason(report),
                "location": _location(report),
            }
        )


def pytest_sessionfinish(session, exitstatus):
    target = session.config.getoption("skip_report", None)
    if not target or hasattr(session.config, "workerinput"):
        return  # under pytest-xdist the controller, which sees every worker's reports, writes it
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps({"version": REPORT_VERSION, "exitstatus": int(exitstatus), "skips": _SKIPS}, indent=1)
    )
    os.replace(tmp, path)  # a half-written report would read as "no skips"


# --------------------------------------------------------------------------------------------------
# allow-list and checker
# --------------------------------------------------------------------------------------------------
class AllowListError(ValueError):
    """The allow-list has a line that is not ``PATTERN [| REASON]  # why``."""


def _compile(pattern: str) -> re.Pattern:
    """``*`` is any run of characters; everything else matches itself."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


@dataclass(frozen=True)
class Entry:
    nodeid: str
    reason: str | None
    why: str
    line: int

    def matches(self, skip: dict) -> bool:
        if not _compile(self.nodeid).fullmatch(skip["nodeid"]):
            return False
        return self.reason is None or bool(_compile(self.reason).fullmatch(skip["reason"]))

    def __str__(self) -> str:
        return f"line {self.line}: {self.nodeid}" + (f" | {self.reason}" if self.reason else "")


def parse_allow_list(text: str) -> list[Entry]:
    """Entries of an allow-list; raises AllowListError for an entry without its ``# why`` comment."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        body, sep, why = line.partition(" # ")
        if not sep or not why.strip():
            raise AllowListError(
                f"line {number}: {line!r} has no comment saying why the skip is legitimate; "
                "write `PATTERN [| REASON]  # why`"
            )
        parts = re.split(r"\s+\|(?:\s+|$)", body.strip(), maxsplit=1)
        nodeid, reason = parts[0].strip(), (parts[1].strip() if len(parts) == 2 else None)
        if not nodeid or reason == "":
            raise AllowListError(
                f"line {number}: {line!r} needs a node-id pattern (and a reason after ' | ')"
            )
        entries.append(Entry(nodeid, reason, why.strip(), number))
    return entries


def unexpected_skips(skips: list[dict], entries: list[Entry]) -> tuple[list[dict], dict[Entry, int]]:
    """Skips no entry matches, and how many skips each entry allowed."""
    used = {e: 0 for e in entries}
    unexpected = []
    for skip in skips:
        hit = next((e for e in entries if e.matches(skip)), None)
        if hit is None:
            unexpected.append(skip)
        else:
            used[hit] += 1
    return unexpected, used


def check(report_path: str, allow_path: str) -> int:
    try:
        report = json.loads(Path(report_path).read_text())
        skips = report["skips"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(
            f"skip guard: cannot read the skip report {report_path} ({exc}); did pytest run with "
            "`-p skip_guard --skip-report=...`?",
            file=sys.stderr,
        )
        return 2
    try:
        entries = parse_allow_list(Path(allow_path).read_text()) if Path(allow_path).exists() else []
    except AllowListError as exc:
        print(f"skip guard: {allow_path}: {exc}", file=sys.stderr)
        return 2
    unexpected, used = unexpected_skips(skips, entries)
    allowed = len(skips) - len(unexpected)
    for entry, n in used.items():
        if n:
            print(f"skip guard: {n} skip(s) allowed by {allow_path} {entry}  # {entry.why}")
        else:
            print(f"skip guard: note: {allow_path} {entry} allowed no skip in this run")
    if unexpected:
        print(
            f"skip guard: {len(unexpected)} skip(s) not on the allow-list {allow_path} — CI cannot pass by "
            "skipping:",
            file=sys.stderr,
        )
        for skip in unexpected:
            print(f"  SKIPPED {skip['nodeid']}\n      reason: {skip['reason']}", file=sys.stderr)
        print(
            "Fix the cause (a missing dependency, "
            "data folder, browser or server is a broken CI machine), or, "
            f"if the skip is legitimate, add `NODEID_PATTERN [| REASON]  # why` to {allow_path}.",
            file=sys.stderr,
        )
        return 1
    print(f"skip guard: {len(skips)} skip(s), {allowed} on the allow-list, 0 unexpected")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "check":
        print("usage: python .ci/skip_guard.py check REPORT.json ALLOWLIST.txt", file=sys.stderr)
        return 2
    return check(args[1], args[2])


if __name__ == "__main__":
    raise SystemExit(main())
