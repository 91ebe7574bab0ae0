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


def redact_load(load: LoadResult, secrets: Iterable[str] = ()) -> LoadResult:
    """A copy of ``load`` whose URL, failure messages, settings and error carry no credential."""
    scrubber = Scrubber(secrets)
    reasons: dict[str, int] = {}
    for reason, count in load.failure_reasons.items():
        # Two messages differing only by a credential become one line with their counts summed.
        clean = scrubber.text(reason)
        reasons[clean] = reasons.get(clean, 0) + count
    return dataclasses.replace(
        load,
        base_url=scrubber.url(load.base_url),
        failure_reasons=reasons,
        settings={name: scrubber.text(str(value)) for name, value in load.settings.items()},
        error=scrubber.text(load.error),
    )
