"""`gateproof smoke`: one streamed request through the official openai SDK, printed as it arrives.

The quickest proof that the embedded default works on this machine: it starts
the mock provider and the reference gateway on free loopback ports, sends one
streamed chat completion with the `openai` SDK through the gateway, prints the
text as the chunks arrive and the usage at the end, and stops both servers.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from gateproof.cli.launch import LaunchError, local_stack
from gateproof.openapi import format_directive

__all__ = ["DEFAULT_PROMPT", "HELP", "configure", "main", "stream_once"]

HELP = "send one streamed request SDK -> reference gateway -> mock provider and print it"
DESCRIPTION = __doc__ or HELP
DEFAULT_PROMPT = "Say hello to a new gateproof user. " + format_directive(tokens=24, ttft_ms=150, itl_ms=30)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="openai/gpt-4o", help="model id to ask for (default: %(default)s)")
    parser.add_argument(
        "--prompt",
        default=DEFAULT_PROMPT,
        help="the user message (a [[gateproof ...]] directive steers the mock provider)",
    )


def stream_once(base_url: str, api_key: str, model: str, prompt: str, out: TextIO) -> int:
    """Send one streamed chat completion with the openai SDK, printing the text as it arrives.

    Returns the number of chunks received; SDK errors propagate to the caller.
    """
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30.0)
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    out.write("answer: ")
    out.flush()
    usage = None
    chunks = 0
    for chunk in stream:
        chunks += 1
        if chunk.choices and chunk.choices[0].delta.content:
            out.write(chunk.choices[0].delta.content)
            out.flush()
        if chunk.usage is not None:
            usage = chunk.usage
    out.write("\n")
    out.write(f"{chunks} chunks; usage: {usage.model_dump() if usage else 'none'}\n")
    out.flush()
    return chunks


def main(args: argparse.Namespace) -> int:
    from openai import OpenAIError

    from gateproof.contract.results import Scrubber

    keys: list[str] = []
    try:
        with local_stack() as stack:
            keys = list(stack.keys.values())
            print(f"mock provider     {stack.mock.url}")
            print(f"reference gateway {stack.gateway.url}")
            stream_once(stack.base_url, stack.api_key, args.model, args.prompt, sys.stdout)
    except LaunchError as exc:
        print(f"gateproof smoke: a local server did not start: {exc}", file=sys.stderr)
        return 3
    except OpenAIError as exc:
        # an SDK error quotes the gateway's answer, which may echo the key
        print(f"gateproof smoke: the request failed: {Scrubber(keys).text(str(exc))}", file=sys.stderr)
        return 1
    return 0
