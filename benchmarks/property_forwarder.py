"""What the property layer's bounding forwarder costs per request, against going direct.

schemathesis talks to the target through ``WireForwarder`` (the wire rules for ``requests``).
This starts a mock and the reference gateway, sends the same requests with ``requests`` direct
and through the forwarder, and prints milliseconds per request and the ratio. A ratio far above 1
(a fixed ~40 ms per POST) is the Nagle / delayed-ACK stall the forwarder's quick-ACK avoids.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from gateproof.cli.launch import local_stack
from gateproof.contract._exchange import WireForwarder

ROUNDS = 200


def _per_request_ms(call: Callable[[], requests.Response]) -> float:
    _ = call().content  # warm the connection
    started = time.perf_counter()
    for _ in range(ROUNDS):
        _ = call().content
    return (time.perf_counter() - started) / ROUNDS * 1000.0


def main() -> None:
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    with local_stack() as stack, WireForwarder(10.0) as forwarder:
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        session = requests.Session()
        session.trust_env = False
        url = stack.base_url + "/chat/completions"
        for label, proxies in (("direct", None), ("forwarder", {"http": forwarder.url})):
            post = _per_request_ms(
                lambda p=proxies: session.post(url, json=body, headers=headers, proxies=p, timeout=10)
            )
            get = _per_request_ms(
                lambda p=proxies: session.get(stack.base_url + "/models", proxies=p, timeout=10)
            )
            print(f"{label:9}  POST chat {post:6.2f} ms/request   GET models {get:6.2f} ms/request")
            if label == "direct":
                base_post, base_get = post, get
        print(f"ratio forwarder/direct: POST {post / base_post:.2f}, GET {get / base_get:.2f}")


if __name__ == "__main__":
    main()
