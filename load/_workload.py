"""The workload file: what mix of requests a load run sends, planned per request, reproducibly.

A real gateway's traffic is a mix: short chats, long streams, tool calls, long agent transcripts.
The workload file (YAML) describes that mix, and :meth:`Workload.plan` turns a schedule index and
the run's seed into one :class:`PlannedCall` (scenario, stream flag, model, prompt and output
length), the same call for the same ``(index, seed)`` in every process: a paired run's two legs
and a distributed run's workers plan identical requests without talking to each other.

Format::

    scenarios:            # relative weights (need not sum to 1); 0 turns one off
      chat: 2
      stream: 6
      tools: 1
      compression: 1
    prompt_tokens: {uniform: [50, 2000]}    # a number, {uniform: [low, high]} or {choices: [...]}
    output_tokens:
      choices:
        - {value: 16, weight: 3}
        - 256                               # a bare value weighs 1
    models:               # one model, a weighted list, or per scenario (with `default`)
      default:
        - {model: openai/gpt-4o, weight: 3}
        - anthropic/claude-haiku-4-5
      tools: openai/gpt-4o
    compression:          # the compression scenario's transcripts and endpoints
      sizes: [1k, 8k]
      endpoints: [chat, compress]

Only ``scenarios`` is required. Without ``prompt_tokens`` a call carries the short default prompt;
without ``output_tokens`` the mock answers its default length; without ``models`` every call
uses the run's ``--model``.

Each field of a plan is drawn from its own uniform number of one ``random.Random`` seeded with
``f"{seed}:{index}"``, always in the same order, so changing one distribution of the file never
changes the draws of the others. Building a body is cheap (no tokenizer run over the prompt): the
filler is a slice of a pool of words that are one cl100k token each (with or without a leading
space), so its count is known without counting; only the short directive is counted.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateproof.load._compression import (
    DEFAULT_TRANSCRIPT_SIZES,
    ENDPOINTS,
    PlannedRequest,
    _with_directive,
    compression_plan,
)
from gateproof.openapi import (
    COMPRESSION_HEADER,
    TRANSCRIPT_SIZES,
    count_chat_prompt,
    count_text,
    format_directive,
)

__all__ = [
    "DEFAULT_PROMPT",
    "MAX_OUTPUT_TOKENS",
    "MAX_PROMPT_TOKENS",
    "SCENARIOS",
    "TOOL",
    "TOOL_NAME",
    "Distribution",
    "PlannedCall",
    "Weighted",
    "Workload",
    "load_workload",
    "workload_from_dict",
]

#: the scenarios a workload mixes: a plain chat completion, a streamed one, a request with one
#: function tool that the mock answers with a call to it, and the compression scenario's transcripts
SCENARIOS = ("chat", "stream", "tools", "compression")
#: the prompt of a call when the file has no ``prompt_tokens`` (the runs' default prompt)
DEFAULT_PROMPT = "Reply with a short paragraph about load testing."
#: the function the tools scenario offers and the mock is asked to call
TOOL_NAME = "get_weather"
TOOL: Mapping[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name."}},
            "required": ["city"],
        },
    },
}
#: bounds of the length distributions, in tokens (the mock answers at most 100,000 tokens; an
#: output of 0 would leave a stream without content, which fails as ``no_content``)
MAX_PROMPT_TOKENS = 1_000_000
MAX_OUTPUT_TOKENS = 100_000
_MIN_OUTPUT_TOKENS = 1

#: common words for the prompt filler; those that are not one token both ways are dropped
_CANDIDATE_WORDS = (
    "time work system data service request answer model token stream chunk server client network "
    "message result value report number record table figure step rate check proof gate route query "
    "reply question water river forest window paper letter music story house market school office "
    "city road street light sound voice field point level order group state power money world "
    "family friend people child night summer winter spring color green yellow orange purple silver "
    "golden simple clear quick steady plain small large early later north south east west chair "
    "planet bridge tower castle engine signal rocket camera picture video screen button format "
    "version change update status detail source target branch commit review design pattern module"
)
#: words in the filler pool (a longer prompt repeats it)
_POOL_WORDS = 8192
_TOP_KEYS = ("scenarios", "prompt_tokens", "output_tokens", "models", "compression", "description")
_COMPRESSION_HEADERS: Mapping[str, str] = {COMPRESSION_HEADER: "true"}
_NO_HEADERS: Mapping[str, str] = {}


@dataclass(frozen=True)
class Distribution:
    """A length in tokens: ``fixed`` (one value), ``uniform`` (low..high inclusive) or ``choices``."""

    kind: str
    values: tuple[int, ...]
    #: choices only: the running sum of the weights
    cumulative: tuple[float, ...] = ()

    def draw(self, r: float) -> int:
        """The value for one uniform number ``r`` in [0, 1)."""
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "uniform":
            low, high = self.values
            return min(low + int(r * (high - low + 1)), high)
        index = bisect.bisect_right(self.cumulative, r * self.cumulative[-1])
        return self.values[min(index, len(self.values) - 1)]

    def __str__(self) -> str:
        if self.kind == "fixed":
            return str(self.values[0])
        if self.kind == "uniform":
            return f"uniform {self.values[0]}..{self.values[1]}"
        weights = [b - a for a, b in itertools.pairwise((0.0, *self.cumulative))]
        return "choices " + ", ".join(
            f"{v} (weight {w:g})" for v, w in zip(self.values, weights, strict=True)
        )


@dataclass(frozen=True)
class Weighted:
    """Names drawn in proportion to their weights (a weight of 0 is never drawn)."""

    names: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, weights: Mapping[str, float]) -> Weighted:
        return cls(tuple(weights), tuple(itertools.accumulate(float(w) for w in weights.values())))

    def draw(self, r: float) -> str:
        index = bisect.bisect_right(self.cumulative, r * self.cumulative[-1])
        return self.names[min(index, len(self.names) - 1)]

    def shares(self) -> dict[str, float]:
        """Each name's share of the draws (0..1)."""
        total = self.cumulative[-1]
        weights = [b - a for a, b in itertools.pairwise((0.0, *self.cumulative))]
        return {name: weight / total for name, weight in zip(self.names, weights, strict=True)}


@functools.cache
def _word_pool() -> tuple[str, tuple[int, ...]]:
    """A long text of words that are one token each, with or without a leading space, and where
    each word starts: ``text[starts[i]:starts[j]]`` is ``j - i`` words costing exactly ``j - i`` tokens.

    The tokenizer's pre-split cuts before every space-and-letters run, so words separated by single
    spaces are tokenized one by one and their counts add up. Checked against the tokenizer once.
    """
    candidates = _CANDIDATE_WORDS.split()
    words = [w for w in candidates if count_text(w) == 1 and count_text(" " + w) == 1]
    drawn = random.Random(0).choices(words, k=_POOL_WORDS)
    text = "".join(" " + word for word in drawn)
    starts = tuple(itertools.accumulate((len(w) + 1 for w in drawn), initial=0))
    return text, starts


def _filler(words: int, offset: int) -> str:
    """``words`` one-token words (each with its leading space) from the pool, starting at ``offset``."""
    text, starts = _word_pool()
    size = len(starts) - 1
    start = offset % size
    if start + words <= size:
        return text[starts[start] : starts[start + words]]
    rest = words - (size - start)
    whole, tail = divmod(rest, size)
    return text[starts[start] :] + text * whole + text[: starts[tail]]


@functools.cache
def _framing(with_tool: bool) -> int:
    """Prompt tokens of one user message with empty content (and the tool), by the convention."""
    return count_chat_prompt([{"role": "user", "content": ""}], [TOOL] if with_tool else [])


@functools.cache
def _transcript_requests(sizes: tuple[str, ...]) -> dict[tuple[str, str], PlannedRequest]:
    """The compression scenario's requests per (endpoint, size), without model or directive."""
    plan = compression_plan(sizes, model="", directive="", max_tokens=None)
    return {(entry.endpoint, entry.size): entry for entry in plan}


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One request of a workload: what to send, decided by ``Workload.plan`` before it is built."""

    index: int
    scenario: str
    stream: bool
    model: str
    #: the request's prompt tokens as the mock bills them (the directive included); None: the
    #: default prompt. For compression, the transcript's own count
    prompt_tokens: int | None
    #: the answer length asked of the mock; None: its default (tools, /compress: not applicable)
    output_tokens: int | None
    #: ``chat`` (chat completions) or ``compress`` (the gateway's /compress; compression only)
    endpoint: str = "chat"
    #: the transcript size (compression only)
    size: str = ""
    #: where the prompt's filler starts in the word pool (so prompts differ between calls)
    filler_offset: int = 0
    _transcript: PlannedRequest | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """The request's name in locust's statistics: ``chat``, ``chat stream``, ``tools``, ``compress 8k``."""
        if self.scenario == "compression":
            return f"{self.endpoint} {self.size}"
        if self.scenario == "stream":
            return "chat stream"
        return self.scenario

    @property
    def headers(self) -> Mapping[str, str]:
        """Headers the call needs beyond the run's own (compression: the switch that turns it on)."""
        return _COMPRESSION_HEADERS if self.scenario == "compression" else _NO_HEADERS

    def directive_keys(self) -> dict[str, object]:
        """The mock directive keys this call needs: ``tokens``, or the tool call to answer with."""
        if self.scenario == "tools":
            return {"scenario": "tool_call", "tool": TOOL_NAME}
        if self.output_tokens is not None and self.endpoint == "chat":
            return {"tokens": self.output_tokens}
        return {}

    def directive(self, **extra: object) -> str:
        """The whole directive: ``extra`` (cid, timing, ...) plus this call's keys, which win."""
        return format_directive(**{**extra, **self.directive_keys()})

    def body(
        self,
        directive_for: Callable[[PlannedCall], str],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        """The JSON body to send (a fresh dict; nested shared values must not be mutated).

        ``directive_for(call)`` returns the directive text (usually ``call.directive(cid=...)``,
        or ``""`` for none); ``model`` replaces the planned model (a paired run's baseline leg
        names the provider's model). The prompt is padded with filler words so that, directive
        included, it costs ``prompt_tokens`` as the mock counts them (or as few as it can).
        """
        directive = directive_for(self)
        chosen = model or self.model
        if self._transcript is not None:
            base = self._transcript.body
            body: dict[str, Any] = {
                **base,
                "model": chosen,
                "messages": _with_directive(base["messages"], directive),
            }
        else:
            body = {"model": chosen, "messages": [{"role": "user", "content": self._content(directive)}]}
            if self.scenario == "tools":
                body["tools"] = [TOOL]
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _content(self, directive: str) -> str:
        if self.prompt_tokens is None:
            return f"{DEFAULT_PROMPT} {directive}" if directive else DEFAULT_PROMPT
        fixed = _framing(self.scenario == "tools") + (count_text(directive) if directive else 0)
        words = max(self.prompt_tokens - fixed, 0)
        filler = _filler(words, self.filler_offset)
        if directive:
            return directive + filler
        # each pool word is one token without its leading space too
        return filler[1:]


@dataclass(frozen=True)
class Workload:
    """A parsed workload file (see the module docstring)."""

    scenarios: Weighted
    prompt_tokens: Distribution | None
    output_tokens: Distribution | None
    #: scenario -> its models (every scenario the workload can draw has an entry)
    models: Mapping[str, Weighted]
    sizes: tuple[str, ...] = DEFAULT_TRANSCRIPT_SIZES
    endpoints: tuple[str, ...] = ENDPOINTS
    source: str = ""

    def plan(self, index: int, seed: int) -> PlannedCall:
        """The call at schedule position ``index`` of the run seeded ``seed``: always the same."""
        draw = random.Random(f"{seed}:{index}").random
        # one number per field, always all of them, in this order (see the module docstring)
        r_scenario, r_model, r_prompt, r_output, r_endpoint, r_size, r_filler = [draw() for _ in range(7)]
        scenario = self.scenarios.draw(r_scenario)
        model = self.models[scenario].draw(r_model)
        output = self.output_tokens.draw(r_output) if self.output_tokens is not None else None
        if scenario == "compression":
            endpoint = self.endpoints[min(int(r_endpoint * len(self.endpoints)), len(self.endpoints) - 1)]
            size = self.sizes[min(int(r_size * len(self.sizes)), len(self.sizes) - 1)]
            transcript = _transcript_requests(self.sizes)[(endpoint, size)]
            return PlannedCall(
                index,
                scenario,
                False,
                model,
                transcript.original_tokens,
                output if endpoint == "chat" else None,
                endpoint=endpoint,
                size=size,
                _transcript=transcript,
            )
        prompt = self.prompt_tokens.draw(r_prompt) if self.prompt_tokens is not None else None
        return PlannedCall(
            index,
            scenario,
            scenario == "stream",
            model,
            prompt,
            None if scenario == "tools" else output,
            filler_offset=int(r_filler * _POOL_WORDS),
        )

    def prepare(self) -> None:
        """Do the one-off work of building bodies now (the tokenizer, the word pool, the
        compression transcripts), so the first scheduled request does not pay for it."""
        _word_pool()
        _framing(False)
        _framing(True)
        if self.scenarios.shares().get("compression", 0.0) > 0:
            _transcript_requests(self.sizes)

    def describe(self) -> str:
        """One line for the run's settings: the mix, the lengths, the models."""
        mix = ", ".join(f"{name} {share:.0%}" for name, share in self.scenarios.shares().items() if share)
        parts = [mix]
        if self.prompt_tokens is not None:
            parts.append(f"prompt {self.prompt_tokens} tokens")
        if self.output_tokens is not None:
            parts.append(f"output {self.output_tokens} tokens")
        models = sorted({name for weighted in self.models.values() for name in weighted.names})
        parts.append("models " + ", ".join(models))
        if self.scenarios.shares().get("compression", 0.0) > 0:
            parts.append(f"transcripts {','.join(self.sizes)} to {','.join(self.endpoints)}")
        return "; ".join(parts)


class _Problem(ValueError):
    """A mistake in the file, with the path of keys where it is."""


def _tokens(where: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem(f"{where}: a length is a whole number of tokens, got {value!r}")
    if not low <= value <= high:
        raise _Problem(f"{where}: {value} is out of range {low}..{high} tokens")
    return value


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _weight(where: str, value: object, *, zero: bool = False) -> float:
    number = _finite(value)
    if number is not None and (number > 0 or (zero and number == 0)):
        return number
    must = "a number >= 0" if zero else "a number > 0"
    raise _Problem(f"{where}: a weight must be {must}, got {value!r}")


def _distribution(where: str, raw: object, low: int, high: int) -> Distribution:
    forms = "a number of tokens, {uniform: [low, high]} or {choices: [value, {value: N, weight: W}, ...]}"
    if isinstance(raw, int) and not isinstance(raw, bool):
        return Distribution("fixed", (_tokens(where, raw, low, high),))
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise _Problem(f"{where}: must be {forms}, got {raw!r}")
    ((kind, value),) = raw.items()
    if kind == "fixed":
        return Distribution("fixed", (_tokens(f"{where}.fixed", value, low, high),))
    if kind == "uniform":
        if not isinstance(value, list) or len(value) != 2:
            raise _Problem(f"{where}.uniform: must be [low, high], got {value!r}")
        a, b = (_tokens(f"{where}.uniform", v, low, high) for v in value)
        if a > b:
            raise _Problem(f"{where}.uniform: low {a} is above high {b}")
        return Distribution("uniform", (a, b))
    if kind == "choices":
        if not isinstance(value, list) or not value:
            raise _Problem(f"{where}.choices: must be a non-empty list, got {value!r}")
        values: list[int] = []
        weights: list[float] = []
        for number, item in enumerate(value, start=1):
            spot = f"{where}.choices[{number}]"
            if isinstance(item, Mapping):
                unknown = sorted(str(k) for k in item if k not in ("value", "weight"))
                if unknown or "value" not in item:
                    raise _Problem(f"{spot}: must be a number or {{value: N, weight: W}}, got {item!r}")
                values.append(_tokens(spot, item["value"], low, high))
                weights.append(_weight(spot, item.get("weight", 1)))
            else:
                values.append(_tokens(spot, item, low, high))
                weights.append(1.0)
        return Distribution("choices", tuple(values), tuple(itertools.accumulate(weights)))
    raise _Problem(f"{where}: unknown form {kind!r}; must be {forms}")


def _model_list(where: str, raw: object) -> Weighted:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise _Problem(f"{where}: must be a model, or a list of models ({{model: M, weight: W}} or M)")
    weights: dict[str, float] = {}
    for number, item in enumerate(raw, start=1):
        spot = f"{where}[{number}]"
        if isinstance(item, Mapping):
            unknown = sorted(str(k) for k in item if k not in ("model", "weight"))
            if unknown:
                raise _Problem(f"{spot}: unknown key {', '.join(unknown)} (known: model, weight)")
            name, weight = item.get("model"), _weight(spot, item.get("weight", 1))
        else:
            name, weight = item, 1.0
        if not isinstance(name, str) or not name.strip():
            raise _Problem(f"{spot}: a model is a non-empty name, got {name!r}")
        if name in weights:
            raise _Problem(f"{spot}: model {name!r} is listed twice")
        weights[name] = weight
    return Weighted.of(weights)


def _models(raw: object, drawn: Sequence[str], default_model: str | None) -> dict[str, Weighted]:
    fallback = Weighted.of({default_model: 1.0}) if default_model else None
    per: dict[str, Weighted] = {}
    if raw is None:
        pass
    elif isinstance(raw, Mapping):
        unknown = sorted(str(k) for k in raw if k not in (*SCENARIOS, "default"))
        if unknown:
            raise _Problem(
                f"models: unknown scenario {', '.join(unknown)} (per-scenario keys: {', '.join(SCENARIOS)}, default)"
            )
        per = {str(k): _model_list(f"models.{k}", v) for k, v in raw.items()}
        fallback = per.pop("default", fallback)
    else:
        fallback = _model_list("models", raw)
    models: dict[str, Weighted] = {}
    for scenario in drawn:
        chosen = per.get(scenario, fallback)
        if chosen is None:
            raise _Problem(
                f"models: scenario {scenario} has no model (add `default:` or give the run a model)"
            )
        models[scenario] = chosen
    return models


def _scenarios(raw: object) -> Weighted:
    if not isinstance(raw, Mapping) or not raw:
        raise _Problem(f"scenarios: must map scenarios ({', '.join(SCENARIOS)}) to weights, got {raw!r}")
    unknown = sorted(str(k) for k in raw if k not in SCENARIOS)
    if unknown:
        raise _Problem(f"scenarios: unknown scenario {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    weights = {str(k): _weight(f"scenarios.{k}", v, zero=True) for k, v in raw.items()}
    if not any(weights.values()):
        raise _Problem("scenarios: every weight is 0; give at least one scenario a weight above 0")
    return Weighted.of(weights)


def _names(where: str, raw: object, known: Sequence[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Problem(f"{where}: must be a non-empty list of {', '.join(known)}, got {raw!r}")
    unknown = [str(v) for v in raw if v not in known]
    if unknown:
        raise _Problem(f"{where}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    if len(set(raw)) != len(raw):
        raise _Problem(f"{where}: a value is repeated in {raw!r}")
    return tuple(str(v) for v in raw)


def _compression(raw: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if raw is None:
        return DEFAULT_TRANSCRIPT_SIZES, ENDPOINTS
    if not isinstance(raw, Mapping):
        raise _Problem(f"compression: must be a mapping with sizes and endpoints, got {raw!r}")
    unknown = sorted(str(k) for k in raw if k not in ("sizes", "endpoints"))
    if unknown:
        raise _Problem(f"compression: unknown key {', '.join(unknown)} (known: sizes, endpoints)")
    sizes = (
        _names("compression.sizes", raw["sizes"], TRANSCRIPT_SIZES)
        if "sizes" in raw
        else DEFAULT_TRANSCRIPT_SIZES
    )
    endpoints = (
        _names("compression.endpoints", raw["endpoints"], ENDPOINTS) if "endpoints" in raw else ENDPOINTS
    )
    return sizes, endpoints


def workload_from_dict(
    data: object, *, source: str = "<workload>", default_model: str | None = None
) -> Workload:
    """A workload from the file's parsed content; ValueError naming ``source`` and the key."""
    try:
        if not isinstance(data, Mapping):
            what = "is empty" if data is None else f"must be a mapping, got {type(data).__name__}"
            raise _Problem(f"{what}; it needs at least `scenarios:` (weights of {', '.join(SCENARIOS)})")
        unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
        if unknown:
            raise _Problem(f"unknown key {', '.join(unknown)} (known: {', '.join(_TOP_KEYS)})")
        if "scenarios" not in data:
            raise _Problem(f"missing `scenarios:` (weights of {', '.join(SCENARIOS)})")
        scenarios = _scenarios(data["scenarios"])
        prompt = data.get("prompt_tokens")
        output = data.get("output_tokens")
        drawn = [name for name, share in scenarios.shares().items() if share > 0]
        sizes, endpoints = _compression(data.get("compression"))
        description = data.get("description", "")
        if not isinstance(description, str):
            raise _Problem(f"description: must be text, got {description!r}")
        return Workload(
            scenarios=scenarios,
            prompt_tokens=None
            if prompt is None
            else _distribution("prompt_tokens", prompt, 0, MAX_PROMPT_TOKENS),
            output_tokens=None
            if output is None
            else _distribution("output_tokens", output, _MIN_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS),
            models=_models(data.get("models"), drawn, default_model),
            sizes=sizes,
            endpoints=endpoints,
            source=source,
        )
    except _Problem as problem:
        raise ValueError(f"workload file {source}: {problem}") from None


def load_workload(path: str | Path, *, default_model: str | None = None) -> Workload:
    """The workload of the YAML file at ``path``; ``default_model`` serves scenarios the file gives
    no model. ValueError naming the file and the key for any mistake."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"workload file {path}: cannot be read ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"workload file {path}: is not valid YAML: {exc}") from exc
    return workload_from_dict(data, source=str(path), default_model=default_model)
