"""The HTML report: self-contained, every result present and ordered, untrusted text escaped."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

from gateproof.contract.results import RunResult
from gateproof.load.results import LoadResult
from gateproof.reports import render_html

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects the elements the assertions need: result rows per layer, images, links, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.layer: str | None = None
        self.images: list[dict[str, str | None]] = []
        self.references: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append(tag)
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if tag == "tbody":
            self.layer = attributes.get("data-layer")
        if tag == "tr" and "data-outcome" in attributes:
            self.rows.append({**attributes, "layer": self.layer})
        if tag == "img":
            self.images.append(attributes)
        for name in ("src", "href", "action", "poster", "data"):
            value = attributes.get(name)
            if value is not None:
                self.references.append((tag, name, value))


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def test_page_is_self_contained(run: RunResult, load: LoadResult) -> None:
    page = render_html(run, load)
    parsed = _parse(page)

    for tag, name, value in parsed.references:
        # Only in-page anchors and inline data: nothing to fetch, from the network or the disk.
        assert value.startswith(("#", "data:image/png;base64,")), (tag, name, value[:60])
    assert "link" not in parsed.tags
    assert not re.search(r"<script[^>]+src", page)
    assert "@import" not in page
    assert not re.search(r"url\(", page)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)


def test_every_result_has_a_row_grouped_by_layer_failures_first(run: RunResult) -> None:
    parsed = _parse(render_html(run))

    assert len(parsed.rows) == len(run.results)
    assert "results-table" in parsed.ids
    by_layer: dict[str | None, list[tuple[str | None, str | None]]] = {}
    for row in parsed.rows:
        by_layer.setdefault(row["layer"], []).append((row["data-check"], row["data-outcome"]))
    assert list(by_layer) == ["property", "scenario", "stream", "load"]
    assert by_layer["property"] == [
        ("property.response_schema_conformance", "failed"),
        ("property.response_schema_conformance", "passed"),
        ("property.response_schema_conformance", "passed"),
    ]
    # Checks with a failure come first, then by outcome: failed, error, passed, not applicable.
    assert by_layer["scenario"] == [
        ("scenario.error_envelope_conforms", "failed"),
        ("scenario.error_envelope_conforms", "passed"),
        ("scenario.provider_header_present", "failed"),
        ("scenario.compression_fields", "not_applicable"),
    ]
    assert by_layer["stream"] == [
        ("stream.usage_on_final_chunk", "error"),
        ("stream.terminal_done_sentinel", "passed"),
    ]


def test_rows_carry_details_and_the_registry_documents_each_check(run: RunResult) -> None:
    page = render_html(run)

    assert "<summary>error.code is null, expected &#39;bad_model_id&#39;</summary>" in page
    assert "<dt>expected</dt><dd><pre>400 invalid_request_error / bad_model_id</pre></dd>" in page
    assert "HTTP 400 after 8.25 ms" in page
    parsed = _parse(page)
    for check in {(r.layer.value, r.check) for r in run.results}:
        assert f"r-check-{check[0]}-{check[1]}" in parsed.ids
    assert "error envelope conforms: what the spec demands of it" in page


def test_plots_are_embedded_as_png_data_uris(run: RunResult, load: LoadResult) -> None:
    parsed = _parse(render_html(run, load))

    plots = [image for image in parsed.images if "plot" in (image.get("class") or "").split()]
    assert [image["data-plot"] for image in plots] == ["ttft", "timeline"]
    for image in plots:
        src = image["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_given_plots_are_used_as_they_are(load: LoadResult) -> None:
    tiny = PNG_MAGIC + b"not really a png"
    page = render_html(None, load, plots={"ttft": tiny})

    assert "data:image/png;base64," + base64.b64encode(tiny).decode() in page
    assert page.count('class="plot"') == 2  # the timeline was drawn here


def test_untrusted_text_is_escaped(run: RunResult) -> None:
    page = render_html(run)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>here</b>" not in page


def test_unreachable_and_load_only_pages(unreachable_run: RunResult, load: LoadResult) -> None:
    unreachable = render_html(unreachable_run)
    assert 'data-verdict="fail"' in unreachable
    assert "Target unreachable:</strong> connection refused on http://127.0.0.1:9" in unreachable
    assert "No check produced a result." in unreachable

    load_page = render_html(None, load)
    assert "<dt>model</dt><dd>openai/gpt-4o-mini</dd>" in load_page
    assert "<dt>output tokens</dt><dd>64,500</dd>" in load_page
    load_only = _parse(load_page)
    assert load_only.rows == []
    assert "load" in load_only.ids and "load-figures" in load_only.ids
