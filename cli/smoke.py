"""`gateproof smoke`: one streamed request through the official openai SDK, printed as it arrives.

The quickest proof that the embedded default works on this machine: it starts
the mock provider and the reference gateway on free loopback ports, sends one
streamed chat completion with the `openai` SDK through the gateway, prints the
text as the chunks arrive and the usage at the end, and stops both servers.
"""

from __future__ import annotations

import argparse
import sys

from gateproof.cli.launch import LaunchError, local_stack

__all__ = ["HELP", "configure", "main"]

HELP = "send one streamed request SDK -> reference gateway -> mock provider and print it"
DESCRIPTION = __doc__ or HELP


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="openai/gpt-4o", help="model id to ask for (default: %(default)s)")
    parser.add_argument(
        "--prompt",
        default="Say hello to a new gateproof user. [[gateproof tokens=24 ttft_ms=150 itl_ms=30]]",
        help="the user message (a [[gateproof ...]] directive steers the mock provider)",
    )


def main(args: argparse.Namespace) -> int:
    from openai import OpenAI, OpenAIError

    try:
        with local_stack() as stack:
            print(f"mock provider   {stack.mock.url}")
            print(f"reference gateway {stack.gateway.url}")
            client = OpenAI(base_url=stack.base_url, api_key=stack.api_key, max_retries=0, timeout=30.0)
            stream = client.chat.completions.create(
                model=args.model,
                messages=[{"role": "user", "content": args.prompt}],
                stream=True,
                stream_options={"include_usage": True},
            )
            print("answer: ", end="", flush=True)
            usage = None
            chunks = 0
            for chunk in stream:
                chunks += 1
                if chunk.choices and chunk.choices[0].delta.content:
                    print(chunk.choices[0].delta.content, end="", flush=True)
                if chunk.usage is not None:
                    usage = chunk.usage
            print()
            print(f"{chunks} chunks; usage: {usage.model_dump() if usage else 'none'}")
    except LaunchError as exc:
        print(f"gateproof smoke: a local server did not start: {exc}", file=sys.stderr)
        return 3
    except OpenAIError as exc:
        print(f"gateproof smoke: the request failed: {exc}", file=sys.stderr)
        return 1
    return 0
