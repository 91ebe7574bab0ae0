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
USER_CLASSES = {"stream": "StreamingChatUser", "chat": "ChatUser", "compression": "CompressionUser"}


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
        )

    def body(self, *, stream: bool) -> dict[str, object]:
        """The chat completions request body every user of the run sends."""
        content = f"{self.prompt} {self.directive}" if self.directive else self.prompt
        body: dict[str, object] = {"model": self.model, "messages": [{"role": "user", "content": content}]}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body
