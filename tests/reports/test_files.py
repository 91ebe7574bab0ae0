"""write_report: one folder with every format, and a results.json that loads back."""

from __future__ import annotations

import json
from pathlib import Path

from gateproof.contract.results import RunResult
from gateproof.load.results import LoadResult
from gateproof.reports import ReportFiles, write_report


def test_writes_every_format_and_the_plots(tmp_path: Path, run: RunResult, load: LoadResult) -> None:
    files = write_report(tmp_path / "nested" / "run-1", run, load)

    assert isinstance(files, ReportFiles)
    assert [p.name for p in files.paths] == [
        "index.html",
        "summary.md",
        "junit.xml",
        "results.json",
        "ttft.png",
        "timeline.png",
    ]
    assert all(p.is_file() and p.stat().st_size > 0 for p in files.paths)
    assert f"Full report: `{files.index_html}`" in files.summary_md.read_text()


def test_results_json_holds_both_parts_and_loads_back(
    tmp_path: Path, run: RunResult, load: LoadResult
) -> None:
    files = write_report(tmp_path, run, load)
    document = json.loads(files.results_json.read_text())

    assert set(document) == {"contract", "load"}
    again = RunResult.from_dict(document["contract"])
    assert again.run_id == run.run_id
    assert [(r.check, r.scenario, r.outcome) for r in again.results] == [
        (r.check, r.scenario, r.outcome) for r in run.results
    ]
    assert document["contract"]["counts"] == {"passed": 5, "failed": 3, "not_applicable": 1, "error": 1}
    assert LoadResult.from_dict(document["load"]).latencies["ttft"].p99 == load.latencies["ttft"].p99


def test_contract_only_and_load_only(tmp_path: Path, run: RunResult, load: LoadResult) -> None:
    contract_only = write_report(tmp_path / "c", run, None)
    assert contract_only.plots == {}
    assert json.loads(contract_only.results_json.read_text())["load"] is None
    assert not list((tmp_path / "c").glob("*.png"))

    load_only = write_report(tmp_path / "l", None, load)
    assert sorted(load_only.plots) == ["timeline", "ttft"]
    assert json.loads(load_only.results_json.read_text())["contract"] is None
    assert 'classname="load.run"' in load_only.junit_xml.read_text()
