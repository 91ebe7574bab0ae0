"""Defence in depth: scrub credentials from results before anything is rendered.

The producers (contract runner, load runner) already redact what they record. A
report, though, is the artefact most likely to be uploaded, attached to a pull
request or mailed around, so the renderers do not rely on that alone: every
result passes through here first, and a credential that slipped through is
replaced by ``[redacted]``.

The engine is not here: ``Scrubber`` and ``redact_run`` live beside the results
model (``gateproof.contract.results``, from ``contract/_secrets.py``), so the
runner and the reports scrub with the same rules. What is scrubbed:

- every secret value the caller passes (``write_report(..., secrets=...)``) in every
  form: plain, base64, URL/percent-encoded, JSON- and HTML-escaped;
- the values of credential headers (``Authorization``, ``api-key``, ``x-api-key``, ...),
  and any other occurrence of such a value elsewhere in the same run;
- credential fields in JSON bodies and credential parameters in URL query strings;
- user:password in URLs;
- token shapes that are recognisable on sight (``Bearer <token>``, ``sk-...``, ``AIza...``);
- and each result's ``raw`` response bytes are dropped, never rendered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from gateproof.contract.results import REDACTED, SECRET_HEADERS, RunResult, Scrubber
from gateproof.contract.results import redact_run as _redact_run
from gateproof.load.results import LoadResult

__all__ = ["REDACTED", "SECRET_HEADERS", "Scrubber", "redact_load", "redact_run"]


def redact_run(run: RunResult, secrets: Iterable[str] = ()) -> RunResult:
    """``contract.results.redact_run``, and every result's ``raw`` bytes dropped.

    A raw response (kept in memory so client impact can be replayed) may hold anything the
    target sent, unscrubbed; no report ever renders it, so it does not even reach a renderer.
    """
    clean = _redact_run(run, secrets)
    clean.results = [
        dataclasses.replace(result, raw=None) if result.raw is not None else result
        for result in clean.results
    ]
    return clean


def _reasons(scrubber: Scrubber, reasons: dict[str, int]) -> dict[str, int]:
    clean: dict[str, int] = {}
    for reason, count in reasons.items():
        # Two messages differing only by a credential become one line with their counts summed.
        text = scrubber.text(reason)
        clean[text] = clean.get(text, 0) + count
    return clean


def redact_load(load: LoadResult, secrets: Iterable[str] = ()) -> LoadResult:
    """A copy of ``load`` whose URLs, failure messages, settings and error texts carry no credential.

    Besides the run's own: the baseline's URL and failure reasons of a paired run, the calibration's
    URL and detail, why the run (or a capacity step) is invalid, and the SLO file's path.
    """
    scrubber = Scrubber(secrets)
    paired = load.paired
    if paired is not None:
        paired = dataclasses.replace(
            paired,
            baseline_url=scrubber.url(paired.baseline_url),
            baseline_failure_reasons=_reasons(scrubber, paired.baseline_failure_reasons),
        )
    calibration = load.calibration
    if calibration is not None:
        calibration = dataclasses.replace(
            calibration, url=scrubber.url(calibration.url), detail=scrubber.text(calibration.detail)
        )
    capacity = load.capacity
    if capacity is not None:
        capacity = dataclasses.replace(
            capacity,
            steps=[dataclasses.replace(step, invalid=scrubber.text(step.invalid)) for step in capacity.steps],
        )
    return dataclasses.replace(
        load,
        base_url=scrubber.url(load.base_url),
        failure_reasons=_reasons(scrubber, load.failure_reasons),
        settings={name: scrubber.text(str(value)) for name, value in load.settings.items()},
        error=scrubber.text(load.error),
        invalid=scrubber.text(load.invalid),
        slo_file=scrubber.text(load.slo_file),
        paired=paired,
        calibration=calibration,
        capacity=capacity,
    )
