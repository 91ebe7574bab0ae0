"""The transcript corpus: coding-agent sessions of 1k to 128k tokens, with needles.

Compression is only worth measuring on prompts that look like the ones it is for:
an agent's history, where most tokens sit in tool results (test runs, installs,
logs, grep hits, JSON API answers). The contract checks, the load scenario, the
compression benchmark and the tests all need the same such prompts, so they live
here, in the part everyone may import.

Why generated, not stored: a 128k-token transcript is about half a megabyte of JSON,
and four of them would dwarf the rest of the repository. The hand-written pieces
(the session's prompts, tool definitions, a source file, a diff and the word lists
that test ids, packages and log lines are built from) are data in ``transcripts/``;
the generators below only repeat, number and colour them, with no randomness, so
every machine builds byte-identical transcripts. Each size is assembled once per
process (about a tenth of a second for all four) and cached.

Each transcript carries *needles*: verbatim substrings a model must still see after
compression (a failing test's id and its assertion line, a jest failure, a value deep
inside a JSON answer, a file path, an error log line, a pip error). No tool result is
longer than ``MAX_RESULT_CHARS`` characters, under the ``CHUNK_CHARS`` piece the
token counter encodes in one call.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from gateproof.openapi._tokens import CHUNK_CHARS, count_chat_prompt

__all__ = ["MAX_RESULT_CHARS", "TRANSCRIPT_SIZES", "Transcript", "load_transcript", "transcripts"]

#: the sizes of the corpus, named by their approximate prompt tokens
TRANSCRIPT_SIZES: tuple[str, ...] = ("1k", "8k", "32k", "128k")
_TARGETS = {"1k": 1_000, "8k": 8_000, "32k": 32_000, "128k": 128_000}
#: how far a transcript may miss its nominal size (the tests hold it to this)
TOLERANCE = 0.10
#: the longest tool result, in characters
MAX_RESULT_CHARS = CHUNK_CHARS - 4 * 1024


@dataclass(frozen=True)
class Transcript:
    """One agent session, ready to send as a chat request (``messages`` plus ``tools``)."""

    name: str
    size: str
    messages: tuple[Mapping[str, Any], ...]
    tools: tuple[Mapping[str, Any], ...]
    needles: tuple[str, ...]
    #: ``count_chat_prompt(messages, tools)`` of the transcript as stored (uncompressed)
    tokens: int

    def request(self, model: str = "openai/gpt-4o") -> dict[str, Any]:
        """A chat completions request body carrying this transcript (fresh lists, safe to mutate)."""
        return {
            "model": model,
            "messages": [dict(message) for message in self.messages],
            "tools": [dict(tool) for tool in self.tools],
        }


# -- the session's hand-written pieces ----------------------------------------------------------

_ESC = "\x1b["
_RST, _BOLD, _DIM = _ESC + "0m", _ESC + "1m", _ESC + "2m"
_RED, _GREEN, _YELLOW, _CYAN = _ESC + "31m", _ESC + "32m", _ESC + "33m", _ESC + "36m"


def _data(name: str) -> str:
    return resources.files("gateproof.openapi").joinpath("transcripts", name).read_text(encoding="utf-8")


@functools.cache
def _session() -> dict[str, Any]:
    loaded = yaml.safe_load(_data("session.yaml"))
    if not isinstance(loaded, dict):
        raise ValueError("transcripts/session.yaml must be a mapping")
    return loaded


def _words(key: str) -> list[Any]:
    value = _session()[key]
    if not isinstance(value, list):
        raise ValueError(f"transcripts/session.yaml: {key} must be a list")
    return value


def _hex(*parts: object, length: int = 12) -> str:
    """A stable pseudo-random hex string (ids, hashes): the same on every machine."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:length]


def _clock(second: int) -> str:
    """An ISO timestamp ``second`` seconds after the nightly run started (with stable milliseconds)."""
    hours, rest = divmod(2 * 3600 + 14 * 60 + second, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"2026-11-30T{hours:02d}:{minutes:02d}:{seconds:02d}.{(second * 137) % 1000:03d}Z"


# -- tool output generators: (text, needles) for occurrence k at scale n ------------------------

#: the failures planted in pytest runs: (node id, source line, assertion line)
_PYTEST_FAILURES = (
    (
        "tests/billing/test_invoice_totals.py::test_total_rounds_half_even[EUR]",
        '        assert invoice_total(lines).to_decimal() == Decimal("19.99")',
        "E       AssertionError: assert Decimal('20.00') == Decimal('19.99')",
    ),
    (
        "tests/billing/test_credit_notes.py::test_credit_note_negates_vat[GBP]",
        "        assert note.vat.minor == -invoice.vat.minor",
        "E       assert -167 == -166",
    ),
    (
        "tests/payments/test_settlement.py::test_settlement_matches_ledger[USD]",
        "        assert batch.total == ledger.balance_for(batch.account)",
        "E       AssertionError: settlement 104500 != ledger 104499 (USD minor units)",
    ),
)


def _test_ids(n: int, k: int) -> list[str]:
    modules, verbs, objects, params = (
        _words("test_modules"),
        _words("test_verbs"),
        _words("test_objects"),
        _words("test_params"),
    )
    ids: list[str] = []
    i = k * 53
    while len(ids) < n:
        module = modules[i % len(modules)]
        verb = verbs[(i // len(modules)) % len(verbs)]
        obj = objects[(i // (len(modules) * len(verbs))) % len(objects)]
        ids.append(f"{module}::test_{verb}_{obj}[{params[i % len(params)]}]")
        i += 1
    return ids


def _pytest(n: int, k: int) -> tuple[str, list[str]]:
    node, source, assertion = _PYTEST_FAILURES[k % len(_PYTEST_FAILURES)]
    ids = _test_ids(n, k)
    fail_at = (len(ids) * 3) // 5
    ids.insert(fail_at, node)
    total = len(ids)
    out = [
        f"{_BOLD}============================= test session starts =============================={_RST}",
        "platform linux -- Python 3.12.8, pytest-8.3.4, pluggy-1.5.0 -- /srv/ledgerline/.venv/bin/python",
        "cachedir: .pytest_cache",
        "hypothesis profile 'ci' -> deadline=None, derandomize=True",
        "rootdir: /srv/ledgerline/services/ledgerline",
        "configfile: pyproject.toml",
        "plugins: hypothesis-6.122.3, anyio-4.7.0, cov-6.0.0, freezegun-0.4.2",
        f"{_BOLD}collecting ... {_RST}collected {total} items",
        "",
    ]
    for index, test_id in enumerate(ids):
        percent = f"[{(index + 1) * 100 // total:3d}%]"
        if test_id == node:
            out.append(f"{test_id} {_RED}FAILED{_RST}{_RED}{percent:>20}{_RST}")
        else:
            out.append(f"{test_id} {_GREEN}PASSED{_RST}{_GREEN}{percent:>20}{_RST}")
    name = node.split("::", 1)[1]
    module = node.split("::", 1)[0]
    out += [
        "",
        "=================================== FAILURES ===================================",
        f"{_RED}{_BOLD}{'_' * 20} {name} {'_' * 20}{_RST}",
        "",
        "currency = <Currency.EUR: 'EUR'>",
        "",
        '    @pytest.mark.parametrize("currency", list(Currency))',
        f"    def {name.split('[')[0]}(currency: Currency) -> None:",
        "        invoice = make_invoice(currency, lines=3, unit_price=Decimal('6.665'))",
        "        lines = [line.total for line in invoice.lines]",
        ">" + source[1:],
        f"{_BOLD}{_RED}{assertion}{_RST}",
        f"{_BOLD}{_RED}E        +  where the left side = invoice_total([...]).to_decimal(){_RST}",
        "",
        f"{_BOLD}{module}{_RST}:{88 + 17 * k}: AssertionError",
        f"{_YELLOW}=============================== warnings summary ==============================={_RST}",
        "tests/conftest.py:41",
        "  /srv/ledgerline/services/ledgerline/tests/conftest.py:41: DeprecationWarning: "
        "datetime.datetime.utcnow() is deprecated and scheduled for removal in a future version.",
        "",
        "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html",
        "=========================== short test summary info ============================",
        f"{_RED}FAILED{_RST} {node} - {assertion[8:]}",
        f"{_RED}============= {_BOLD}1 failed{_RST}{_RED}, {_GREEN}{total - 1} passed{_RST}{_RED}, "
        f"1 warning in {3.1 + total / 97:.2f}s ============={_RST}",
    ]
    return "\n".join(out) + "\n", [node, assertion]


#: the heading jest prints over a failed test (its own separator, U+203A, between describe and test)
_JEST_FAILURE = "● AmountCell › formats negative amounts"  # noqa: RUF001


def _jest(n: int, k: int) -> tuple[str, list[str]]:
    suites, cases = _words("jest_suites"), _words("jest_cases")
    per_suite = max(2, n // len(suites))
    out = ["", "> dashboard@0.9.0 test", "> jest --colors --ci", ""]
    failing_suite = "src/components/AmountCell.test.tsx"
    passed = 0
    for s_index, suite in enumerate(suites):
        failed = suite == failing_suite
        badge = f"{_ESC}41m{_BOLD} FAIL {_RST}" if failed else f"{_ESC}42m{_BOLD} PASS {_RST}"
        folder, _, file = suite.rpartition("/")
        out.append(f"{badge} {_DIM}{folder}/{_RST}{_BOLD}{file}{_RST}")
        out.append(f"  {file.split('.')[0]}")
        for c_index in range(per_suite):
            case = cases[(c_index + s_index * 3 + k) % len(cases)]
            variant = "" if c_index < len(cases) else f" (variant {c_index // len(cases)})"
            ms = 3 + (c_index * 7 + s_index * 5) % 40
            out.append(f"    {_GREEN}✓{_RST} {_DIM}{case}{variant} ({ms} ms){_RST}")
            passed += 1
        if failed:
            out.append(f"    {_RED}✕{_RST} {_DIM}formats negative amounts (9 ms){_RST}")
            out += [
                "",
                f"  {_BOLD}{_RED}{_JEST_FAILURE}{_RST}",
                "",
                f"    {_DIM}expect({_RST}{_RED}received{_RST}{_DIM}).{_RST}toBe{_DIM}({_RST}"
                f"{_GREEN}expected{_RST}{_DIM}) // Object.is equality{_RST}",
                "",
                f'    Expected: {_GREEN}"-€4.50"{_RST}',
                f'    Received: {_RED}"€-4.50"{_RST}',
                "",
                '      12 |   it("formats negative amounts", () => {',
                '      13 |     render(<AmountCell minor={-450} currency="EUR" locale="de-DE" />);',
                f'    {_RED}{_BOLD}>{_RST} 14 |     expect(screen.getByRole("cell").textContent).toBe("-€4.50");',
                f"         | {' ' * 48}{_RED}{_BOLD}^{_RST}",
                "      15 |   });",
                "",
                f"      {_DIM}at Object.toBe ({_RST}{_CYAN}src/components/AmountCell.test.tsx{_RST}{_DIM}:14:50){_RST}",
                "",
            ]
    out += [
        f"{_BOLD}Test Suites: {_RST}{_BOLD}{_RED}1 failed{_RST}, {_BOLD}{_GREEN}{len(suites) - 1} passed{_RST}, "
        f"{len(suites)} total",
        f"{_BOLD}Tests:       {_RST}{_BOLD}{_RED}1 failed{_RST}, {_BOLD}{_GREEN}{passed} passed{_RST}, "
        f"{passed + 1} total",
        f"{_BOLD}Snapshots:   {_RST}0 total",
        f"{_BOLD}Time:        {_RST}{4.2 + passed / 40:.3f} s",
        f"{_DIM}Ran all test suites{_RST}{_DIM}.{_RST}",
    ]
    return "\n".join(out) + "\n", [_JEST_FAILURE, '"€-4.50"']


def _bar(done: float, size: float) -> str:
    width = 40
    filled = round(width * done / size)
    colour = _ESC + "38;5;197m" if done < size else _ESC + "38;5;70m"
    return f"   {colour}{'━' * filled}{_RST}{_ESC}38;5;237m{'━' * (width - filled)}{_RST}"


def _pip(n: int, k: int) -> tuple[str, list[str]]:
    packages = _words("python_packages")
    out = [
        "$ python -m pip install -r requirements-dev.txt --index-url https://pypi.internal.ledgerline.dev/simple"
    ]
    for index in range(n):
        name, version, kb = packages[(index + k) % len(packages)]
        if index >= len(packages):
            name = f"{name}-stubs" if index % 2 else f"types-{name}"
        if index % 5 == 4:
            out.append(
                f"Requirement already satisfied: {name}=={version} in ./.venv/lib/python3.12/site-packages"
            )
            continue
        size = max(kb / 1024, 0.02)
        wheel = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        out.append(f"Collecting {name}=={version} (from -r requirements-dev.txt (line {index + 1}))")
        out.append(
            f"  Downloading {wheel} ({kb} kB)" if kb < 1024 else f"  Downloading {wheel} ({size:.1f} MB)"
        )
        frames = []
        steps = 4 + kb % 9
        for step in range(1, steps + 1):
            done = size * step / steps
            rate = 2.4 + (step * kb % 17) / 10
            eta = (size - done) / rate
            frames.append(
                f"{_bar(done, size)} {done:.1f}/{size:.1f} MB {_ESC}31m{rate:.1f} MB/s{_RST} eta 0:00:{eta:02.0f}"
            )
        out.append("\r".join(frames))
        if index == 3:
            out.append(
                "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after "
                "connection broken by 'ReadTimeoutError(\"HTTPSConnectionPool(host='pypi.internal.ledgerline.dev', "
                "port=443): Read timed out. (read timeout=15)\")': /simple/babel/"
            )
    error = "ERROR: Could not find a version that satisfies the requirement ledgerline-fx==2.4.1 (from versions: 2.3.0, 2.3.1, 2.4.0)"
    out += [error, "ERROR: No matching distribution found for ledgerline-fx==2.4.1"]
    return "\n".join(out) + "\n", [error]


def _npm(n: int, k: int) -> tuple[str, list[str]]:
    packages = _words("npm_packages")
    out = [
        "npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory. Do not use it.",
        "npm warn deprecated glob@7.2.3: Glob versions prior to v9 are no longer supported",
        "npm warn deprecated abab@2.0.6: Use your platform's native atob() and btoa() methods instead",
    ]
    spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    frames = []
    for index in range(n):
        name, version = packages[(index + k) % len(packages)]
        phase = ("idealTree", "reify", "reify:" + name)[index % 3]
        frames.append(
            f"{spinner[index % len(spinner)]} {phase}: timing {phase} Completed in {index * 37 % 900}ms"
        )
        frames.append(
            f"{spinner[(index + 1) % len(spinner)]} {phase}: http fetch GET 200 https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz {index * 13 % 300}ms (cache miss)"
        )
        if len(frames) >= 24:
            out.append("\r".join(frames))
            frames = []
    if frames:
        out.append("\r".join(frames))
    out += [
        "",
        f"added {1200 + n} packages, and audited {1201 + n} packages in 41s",
        "",
        "214 packages are looking for funding",
        "  run `npm fund` for details",
        "",
        "2 moderate severity vulnerabilities",
        "",
        "To address all issues, run:",
        "  npm audit fix",
    ]
    return "\n".join(out) + "\n", []


_COMMITS = (
    "Store money as integer minor units (currency refactor)",
    "Move the rounding constant next to Money",
    "Format amounts in the dashboard without Intl",
    "Bump fastapi to 0.115.6",
    "Add credit notes for partial refunds",
    "Reconcile settlements against the ledger nightly",
    "Fix flaky due-date test around DST",
    "Show the overdue badge on the invoice table",
    "Cache exchange rates for one hour",
    "Split VAT lines per rate",
)
_AUTHORS = (
    "Amira Haddad <amira@ledgerline.dev>",
    "Jonas Berg <jonas@ledgerline.dev>",
    "Chen Wei <wei@ledgerline.dev>",
)


def _git_log(n: int, k: int) -> tuple[str, list[str]]:
    out = []
    for index in range(n):
        sha = (
            "3f9c2e1" + _hex("commit", index, k, length=33)
            if index == 0 and k == 0
            else _hex("commit", index, k, length=40)
        )
        out += [
            f"{_YELLOW}commit {sha}{_RST}",
            f"Author: {_AUTHORS[index % len(_AUTHORS)]}",
            f"Date:   Mon Nov {29 - index % 28:2d} {9 + index % 9:02d}:{index * 7 % 60:02d}:12 2026 +0100",
            "",
            f"    {_COMMITS[(index + k) % len(_COMMITS)]}",
            "",
            f"    Refs LED-{412 + index * 3}.",
            "",
        ]
    return "\n".join(out), []


def _git_diff(n: int, k: int) -> tuple[str, list[str]]:
    return _data("rounding.diff.txt"), ["-ROUNDING = ROUND_HALF_EVEN"]


_SOURCE_PATHS = (
    "services/ledgerline/src/ledgerline/billing/rounding.py",
    "services/ledgerline/src/ledgerline/billing/invoices/totals.py",
    "services/ledgerline/src/ledgerline/billing/credit_notes/service.py",
    "services/ledgerline/src/ledgerline/payments/settlement/reconcile.py",
    "services/ledgerline/tests/billing/test_invoice_totals.py",
    "web/dashboard/src/lib/formatMoney.ts",
)


def _grep(n: int, k: int) -> tuple[str, list[str]]:
    code = [line for line in _data("rounding.py.txt").splitlines() if line.strip()]
    out = []
    for index in range(n):
        path = _SOURCE_PATHS[(index * len(_SOURCE_PATHS)) // max(n, 1)]
        line = code[(index * 7 + k) % len(code)].rstrip()
        out.append(f"{path}:{12 + index * 3}:{line}")
    return "\n".join(out) + "\n", [_SOURCE_PATHS[0]]


def _read_file(n: int, k: int) -> tuple[str, list[str]]:
    return _data("rounding.py.txt"), ["ROUNDING = ROUND_HALF_UP"]


def _invoice(index: int, k: int) -> dict[str, Any]:
    number = 4100 + index + 40 * k
    minor = 1999 + index * 250
    record: dict[str, Any] = {
        "id": f"inv_{_hex('inv', index, k, length=16)}",
        "number": f"INV-2026-00{number}",
        "status": ("open", "paid", "overdue")[index % 3],
        "currency": "EUR",
        "customer": {
            "id": f"cus_{_hex('cus', index % 7, length=14)}",
            "name": (
                "Brasserie Lumière",
                "Nordhavn Logistics ApS",
                "Casa Verde S.L.",
                "Kaffeerösterei Ahorn",
            )[index % 4],
            "locale": ("fr-FR", "da-DK", "es-ES", "de-DE")[index % 4],
            "billing_address": {
                "line1": f"{index + 3} Rue des Lilas",
                "city": "Lyon",
                "postal_code": "69003",
                "country": "FR",
            },
        },
        "lines": [
            {
                "sku": f"LL-{200 + line}",
                "description": ("Monthly subscription", "Extra seats", "Priority support")[line],
                "unit_price": {"minor": 666 + line * 100, "currency": "EUR"},
                "quantity": "3",
                "vat_rate": "0.20",
            }
            for line in range(3)
        ],
        "totals": {"net": {"minor": minor - 333}, "vat": {"minor": 333}, "gross": {"minor": minor}},
        "reconciliation": {
            "state": "matched",
            "ledger_entry": f"le_{_hex('le', index, k, length=10)}",
            "difference_minor": 0,
        },
        "created_at": _clock(index * 3600),
    }
    return record


def _http_get(n: int, k: int) -> tuple[str, list[str]]:
    invoices = [_invoice(index, k) for index in range(n)]
    flagged = invoices[n // 2]
    gross = flagged["totals"]["gross"]["minor"]
    needle = f"gross differs from ledger by 1 minor unit (ledger {gross - 1}, invoice {gross}) on {flagged['number']}"
    invoices[n // 2]["reconciliation"] = {
        "state": "mismatch",
        "ledger_entry": f"le_{_hex('le', n // 2, k, length=10)}",
        "difference_minor": 1,
        "note": needle,
    }
    body = {
        "data": invoices,
        "page": 2 + k,
        "per_page": n,
        "total": 412,
        "pages": 9,
        "links": {
            "self": f"https://staging.ledgerline.dev/api/v2/invoices?status=flagged&page={2 + k}",
            "next": f"https://staging.ledgerline.dev/api/v2/invoices?status=flagged&page={3 + k}",
        },
    }
    return json.dumps(body, indent=2, ensure_ascii=False), [needle]


def _server_logs(n: int, k: int) -> tuple[str, list[str]]:
    routes = _words("log_routes")
    start = 600 * k
    out = []
    error_at = n // 2
    for index in range(n):
        second = start + index
        if index == error_at:
            out += [
                f"{_clock(second)} ERROR ledgerline.billing.reconcile invoice INV-2026-004217 gross 2000 != ledger 1999 (EUR, diff 1 minor unit)",
                "Traceback (most recent call last):",
                '  File "/srv/ledgerline/services/ledgerline/src/ledgerline/billing/reconcile.py", line 118, in reconcile_invoice',
                "    raise LedgerMismatch(invoice.number, expected=entry.minor, got=total.minor)",
                "ledgerline.billing.reconcile.LedgerMismatch: INV-2026-004217: expected 1999, got 2000",
            ]
        elif index % 23 == 11:
            out += ["WARNING: connection pool is full, discarding connection: db.internal.ledgerline.dev"] * 6
        elif index % 4:
            out.append(f"{_clock(second)} INFO  ledgerline.access GET /healthz 200 ua=kube-probe/1.31")
        else:
            route = routes[(index // 4) % len(routes)]
            out.append(
                f"{_clock(second)} INFO  ledgerline.access {route} 200 {(index * 37) % 90 + 3}ms rid={_hex('rid', index, k, length=8)}"
            )
    needle = "ERROR ledgerline.billing.reconcile invoice INV-2026-004217 gross 2000 != ledger 1999 (EUR, diff 1 minor unit)"
    return "\n".join(out) + "\n", [
        needle,
        "ledgerline.billing.reconcile.LedgerMismatch: INV-2026-004217: expected 1999, got 2000",
    ]


def _docker_build(n: int, k: int) -> tuple[str, list[str]]:
    packages = _words("python_packages")
    out = [
        '#0 building with "default" instance using docker driver',
        "",
        "#1 [internal] load build definition from Dockerfile",
        "#1 transferring dockerfile: 1.21kB done",
        "#1 DONE 0.0s",
        "",
        "#2 [internal] load metadata for docker.io/library/python:3.12-slim",
        "#2 DONE 0.8s",
        "",
        "#3 [internal] load .dockerignore",
        "#3 transferring context: 312B done",
        "#3 DONE 0.0s",
        "",
        "#4 [builder 1/5] FROM docker.io/library/python:3.12-slim@sha256:" + _hex("base", length=64),
        "#4 CACHED",
        "",
        "#5 [builder 4/5] RUN pip install --no-cache-dir -r requirements.txt",
    ]
    clock = 1.0
    for index in range(n):
        name, version, kb = packages[(index + k) % len(packages)]
        clock += 0.137 + (index % 5) / 20
        out.append(
            f"#5 {clock:.3f} Collecting {name}=={version} (from -r requirements.txt (line {index % 40 + 1}))"
        )
        clock += 0.051
        out.append(
            f"#5 {clock:.3f}   Downloading {name.replace('-', '_')}-{version}-py3-none-any.whl.metadata ({kb // 10 + 2} kB)"
        )
    out += [
        f"#5 {clock + 2:.3f} Successfully installed " + " ".join(f"{p[0]}-{p[1]}" for p in packages),
        f"#5 DONE {clock + 2.4:.1f}s",
        "",
        "#6 [runtime 2/3] COPY --from=builder /opt/venv /opt/venv",
        "#6 DONE 1.2s",
        "",
        "#7 exporting to image",
        "#7 exporting layers 2.3s done",
        "#7 writing image sha256:" + _hex("image", k, length=64) + " done",
        "#7 naming to docker.io/ledgerline/api:nightly done",
        "#7 DONE 2.4s",
    ]
    return "\n".join(out) + "\n", []


def _pager(n: int, k: int) -> tuple[str, list[str]]:
    per_page = 20
    pages = max(1, -(-n // per_page))
    header = " number          | customer                 | currency | gross_minor | status  "
    rule = "-----------------+--------------------------+----------+-------------+---------"
    out = []
    names = ("Brasserie Lumière", "Nordhavn Logistics ApS", "Casa Verde S.L.", "Kaffeerösterei Ahorn")
    for page in range(pages):
        out += [f"Page {page + 1} of {pages + 7}", header, rule]
        for row in range(per_page):
            index = page * per_page + row
            if index >= n:
                break
            number = f"INV-2026-00{4300 + index + 100 * k}"
            out.append(
                f" {number:<15} | {names[index % 4]:<24} | EUR      | {1999 + index * 13:>11} | open    "
            )
        out += [
            f"-- More -- ({(page + 1) * 100 // (pages + 7)}%) press SPACE for the next page, q to quit",
            "",
        ]
    return "\n".join(out), []


@dataclass(frozen=True)
class _Step:
    kind: str
    tool: str
    #: the tool call's arguments
    arguments: Mapping[str, str]
    generate: Callable[[int, int], tuple[str, list[str]]]
    #: lines (or items) at the 32k scale
    lines: int


_STEPS = (
    _Step(
        "pytest",
        "run_tests",
        {"suite": "api", "args": "-v tests/billing tests/payments tests/api"},
        _pytest,
        110,
    ),
    _Step("grep", "grep", {"pattern": "round|quantize|minor", "path": "services web"}, _grep, 90),
    _Step(
        "http_get",
        "http_get",
        {"url": "https://staging.ledgerline.dev/api/v2/invoices?status=flagged"},
        _http_get,
        6,
    ),
    _Step(
        "server_logs",
        "run_shell",
        {"command": "kubectl logs deploy/ledgerline-api --since=2h"},
        _server_logs,
        140,
    ),
    _Step(
        "read_file",
        "read_file",
        {"path": "services/ledgerline/src/ledgerline/billing/rounding.py"},
        _read_file,
        1,
    ),
    _Step("jest", "run_tests", {"suite": "dashboard", "args": "--colors"}, _jest, 70),
    _Step("pip", "run_shell", {"command": "python -m pip install -r requirements-dev.txt"}, _pip, 14),
    _Step(
        "git_log",
        "run_shell",
        {"command": "git log -n 20 -- services/ledgerline/src/ledgerline/billing"},
        _git_log,
        20,
    ),
    _Step(
        "pytest_rerun",
        "run_tests",
        {"suite": "api", "args": "-v tests/billing tests/payments tests/api"},
        _pytest,
        110,
    ),
    _Step(
        "git_diff",
        "run_shell",
        {"command": "git diff 3f9c2e1~1 3f9c2e1 -- '*rounding.py' '*formatMoney.ts'"},
        _git_diff,
        1,
    ),
    _Step("npm", "run_shell", {"command": "cd web/dashboard && npm ci"}, _npm, 60),
    _Step(
        "docker_build",
        "run_shell",
        {"command": "docker build --progress=plain -t ledgerline/api:nightly ."},
        _docker_build,
        70,
    ),
    _Step("pager", "run_shell", {"command": "ledgerctl invoices list --status open | more"}, _pager, 60),
)


def _plan() -> Iterator[tuple[int, _Step]]:
    """The steps in session order, round after round (``k`` numbers the round)."""
    k = 0
    while True:
        for step in _STEPS:
            yield k, step
        k += 1


def _tool_exchange(size: str, index: int, step: _Step, text: str) -> list[dict[str, Any]]:
    call_id = f"call_{_hex(size, index, step.kind, length=24)}"
    remark = _session()["remarks"][step.kind]
    return [
        {
            "role": "assistant",
            "content": remark,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": step.tool, "arguments": json.dumps(dict(step.arguments))},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": text},
    ]


def _generate(
    step: _Step, lines: int, k: int, rerun_of: dict[str, tuple[str, list[str]]]
) -> tuple[str, list[str]]:
    if step.kind == "pytest_rerun" and "pytest" in rerun_of:
        return rerun_of["pytest"]  # the same run again, byte for byte: a duplicated block
    text, needles = step.generate(lines, k)
    while len(text) > MAX_RESULT_CHARS and lines > 1:
        lines = lines * 3 // 4
        text, needles = step.generate(lines, k)
    return text, needles


def _tools_cost(tools: list[Mapping[str, Any]]) -> int:
    return count_chat_prompt([], tools) - count_chat_prompt([]) if tools else 0


def _assemble(size: str) -> Transcript:
    """Steps in session order until the size is reached; a step too big for what is left is skipped."""
    target = _TARGETS[size]
    session = _session()
    every_tool: list[Mapping[str, Any]] = list(session["tools"])
    head: list[dict[str, Any]] = [
        {"role": "system", "content": session["system"]},
        {"role": "user", "content": session["user"]},
    ]
    tail = [{"role": "user", "content": session["follow_up"]}]
    base = count_chat_prompt([*head, *tail])
    scale = min(target / 32_000, 2.0)  # bigger sessions have more rounds, not longer outputs
    messages = list(head)
    needles: list[str] = []
    used: set[str] = set()
    last: dict[str, tuple[str, list[str]]] = {}
    for index, (k, step) in enumerate(_plan()):
        if index > 20 * len(_STEPS):
            break
        tools = [tool for tool in every_tool if tool["function"]["name"] in used | {step.tool}]
        total = base + _tools_cost([tool for tool in every_tool if tool["function"]["name"] in used])
        if total >= target * (1 - TOLERANCE / 2):
            break
        room = target * (1 + TOLERANCE / 2) - base - _tools_cost(tools)
        lines = max(1, round(step.lines * scale))
        while True:
            text, found = _generate(step, lines, k, last)
            exchange = _tool_exchange(size, index, step, text)
            cost = count_chat_prompt(exchange) - count_chat_prompt([])
            if cost <= room or lines == 1:
                break
            lines = max(1, lines // 2)
        if cost > room:
            continue  # even the smallest form of this step overshoots: try the next kind
        if step.kind == "pytest":
            last["pytest"] = (text, found)
        messages += exchange
        base += cost
        used.add(step.tool)
        needles += [needle for needle in found if needle not in needles]
    messages += tail
    frozen = tuple(messages)
    tools_used = tuple(tool for tool in every_tool if tool["function"]["name"] in used)
    return Transcript(
        name=f"agent-{size}",
        size=size,
        messages=frozen,
        tools=tools_used,
        needles=tuple(needles),
        tokens=count_chat_prompt(frozen, tools_used),
    )


@functools.cache
def load_transcript(size: str) -> Transcript:
    """The transcript of ``size`` (one of ``TRANSCRIPT_SIZES``), built once per process."""
    if size not in _TARGETS:
        raise ValueError(f"unknown transcript size {size!r}; the sizes are {', '.join(TRANSCRIPT_SIZES)}")
    return _assemble(size)


def transcripts() -> tuple[Transcript, ...]:
    """Every transcript of the corpus, smallest first."""
    return tuple(load_transcript(size) for size in TRANSCRIPT_SIZES)
