"""What the locust child process needs to know, carried in environment variables.

locust owns the child's command line, so gateproof's own settings travel through
the environment: the runner builds a :class:`LocustSettings` and turns it into
variables (:meth:`LocustSettings.to_env`), the locustfile reads them back
(:meth:`LocustSettings.from_env`). One class on both sides keeps the two in step.

The API key itself is never among them: only the *name* of the variable that
holds it, so the key appears neither on a command line nor in a settings dump.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ENV_PREFIX", "USER_CLASSES", "LocustSettings"]

ENV_PREFIX = "GATEPROOF_LOAD_"

#: scenario name -> locust user class in the locustfile
USER_CLASSES = {
    "stream": "StreamingChatUser",
    "chat": "ChatUser",
    "compression": "CompressionUser",
    "workload": "WorkloadUser",
}


@dataclass(frozen=True)
class LocustSettings:
    """Per-run settings of the locustfile's users."""

    #: request path of chat completions on the target (base URL path + /chat/completions)
    path: str
    model: str
    dump: str
    api_key_env: str = "GATEPROOF_API_KEY"
    max_tokens: int | None = None
    #: the whole ``[[gateproof ...]]`` directive appended to the prompt, or "" for none
    directive: str = ""
    prompt: str = "Reply with a short paragraph about load testing."
    #: seconds one request may take from send to last byte before it counts as a timeout
    timeout: float = 60.0
    #: seconds allowed to connect
    connect_timeout: float = 10.0
    #: file the locust process refreshes with its running counts ("" for none)
    progress: str = ""
    #: the compression scenario: request path of /compress on the target, and the transcript
    #: sizes to cycle through (comma-separated corpus sizes)
    compress_path: str = ""
    transcript_sizes: str = ""
    #: "closed" (each user sends when its last request ended) or an open-loop arrival mode
    #: (``gateproof.load._schedule.ARRIVAL_MODES``) at ``rate`` requests/s, seeded
    arrival: str = "closed"
    rate: float = 0.0
    duration: float = 0.0
    seed: int = 1
    #: locust processes generating the load (an open loop's schedule is shared out among them)
    workers: int = 1
    #: an open loop's cap on requests in flight per process (a full pool makes sends late)
    max_in_flight: int = 1000
    #: paired runs: the baseline's origin (scheme://host:port), chat completions path, model and
    #: key variable; "" for an unpaired run
    baseline_origin: str = ""
    baseline_path: str = ""
    baseline_model: str = ""
    baseline_api_key_env: str = ""
    #: the per-request JSON-lines log ("" for none); each process writes its own file
    records: str = ""
    #: the correlation id prefix of the run's requests
    cid: str = "load"
    #: the workload file ("" for the scenario's one request), and the run's own directive keys
    #: (JSON: timing, cid, stamps, extras) each planned call adds its keys to
    workload: str = ""
    directive_keys: str = ""

    def to_env(self) -> dict[str, str]:
        return {
            ENV_PREFIX + "PATH": self.path,
            ENV_PREFIX + "MODEL": self.model,
            ENV_PREFIX + "DUMP": self.dump,
            ENV_PREFIX + "API_KEY_ENV": self.api_key_env,
            ENV_PREFIX + "MAX_TOKENS": "" if self.max_tokens is None else str(self.max_tokens),
            ENV_PREFIX + "DIRECTIVE": self.directive,
            ENV_PREFIX + "PROMPT": self.prompt,
            ENV_PREFIX + "TIMEOUT": repr(self.timeout),
            ENV_PREFIX + "CONNECT_TIMEOUT": repr(self.connect_timeout),
            ENV_PREFIX + "PROGRESS": self.progress,
            ENV_PREFIX + "COMPRESS_PATH": self.compress_path,
            ENV_PREFIX + "TRANSCRIPT_SIZES": self.transcript_sizes,
            ENV_PREFIX + "ARRIVAL": self.arrival,
            ENV_PREFIX + "RATE": repr(self.rate),
            ENV_PREFIX + "DURATION": repr(self.duration),
            ENV_PREFIX + "SEED": str(self.seed),
            ENV_PREFIX + "WORKERS": str(self.workers),
            ENV_PREFIX + "MAX_IN_FLIGHT": str(self.max_in_flight),
            ENV_PREFIX + "BASELINE_ORIGIN": self.baseline_origin,
            ENV_PREFIX + "BASELINE_PATH": self.baseline_path,
            ENV_PREFIX + "BASELINE_MODEL": self.baseline_model,
            ENV_PREFIX + "BASELINE_API_KEY_ENV": self.baseline_api_key_env,
            ENV_PREFIX + "RECORDS": self.records,
            ENV_PREFIX + "CID": self.cid,
            ENV_PREFIX + "WORKLOAD": self.workload,
            ENV_PREFIX + "DIRECTIVE_KEYS": self.directive_keys,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocustSettings:
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(ENV_PREFIX + name, default)

        missing = [name for name in ("PATH", "MODEL", "DUMP") if not get(name)]
        if missing:
            names = ", ".join(ENV_PREFIX + name for name in missing)
            raise RuntimeError(f"the gateproof locustfile needs {names} (it is started by `gateproof load`)")
        max_tokens = get("MAX_TOKENS")
        return cls(
            path=get("PATH"),
            model=get("MODEL"),
            dump=get("DUMP"),
            api_key_env=get("API_KEY_ENV", "GATEPROOF_API_KEY"),
            max_tokens=int(max_tokens) if max_tokens else None,
            directive=get("DIRECTIVE"),
            prompt=get("PROMPT", cls.prompt),
            timeout=float(get("TIMEOUT", "60")),
            connect_timeout=float(get("CONNECT_TIMEOUT", "10")),
            progress=get("PROGRESS"),
            compress_path=get("COMPRESS_PATH"),
            transcript_sizes=get("TRANSCRIPT_SIZES"),
            arrival=get("ARRIVAL", "closed"),
            rate=float(get("RATE", "0")),
            duration=float(get("DURATION", "0")),
            seed=int(get("SEED", "1")),
            workers=int(get("WORKERS", "1")),
            max_in_flight=int(get("MAX_IN_FLIGHT", "1000")),
            baseline_origin=get("BASELINE_ORIGIN"),
            baseline_path=get("BASELINE_PATH"),
            baseline_model=get("BASELINE_MODEL"),
            baseline_api_key_env=get("BASELINE_API_KEY_ENV"),
            records=get("RECORDS"),
            cid=get("CID", "load"),
            workload=get("WORKLOAD"),
            directive_keys=get("DIRECTIVE_KEYS"),
        )

    @property
    def paired(self) -> bool:
        return bool(self.baseline_origin)

    def body(self, *, stream: bool, model: str | None = None) -> dict[str, object]:
        """The chat completions request body every user of the run sends (``model``: the
        baseline's model name for a paired run's baseline leg)."""
        content = f"{self.prompt} {self.directive}" if self.directive else self.prompt
        body: dict[str, object] = {
            "model": model or self.model,
            "messages": [{"role": "user", "content": content}],
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body
