"""Can a paired load run see a gateway that is 1 ms slower? Resolution of ``gateproof load --baseline-url``.

Run with ``.venv/bin/python benchmarks/paired_resolution.py [--duration 30s]``.

It starts the local stack (mock provider + reference gateway) and a second reference gateway on
the same mock with the load fault ``added_latency_1ms`` (correct answers, each 1 ms later), then
runs three paired, closed-loop, non-streamed runs of ``--duration`` each, one user, provider
delays at 0 (so the gateway's own time is all there is to see):

1. **overhead**: baseline = the mock directly, target = the reference gateway: what the gateway
   adds over the provider;
2. **control**: baseline = target = the reference gateway: the noise floor (the interval should
   straddle or hug 0);
3. **1 ms fault**: baseline = the reference gateway, target = the slow one: the interval of the
   added latency must exclude 0 and sit near 1 ms.

For each it prints the pairs and the added e2e p50 / mean with their 95 % bootstrap intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from gateproof.cli.launch import (
    UPSTREAM_ROLE,
    local_stack,
)

GATEPROOF = str(Path(sys.executable).with_name("gateproof"))


def _paired(
    out: Path, target: str, baseline: str, duration: str, env: dict[str, str], *extra: str
) -> dict[str, object]:
    subprocess.run(
        [
            GATEPROOF,
            "load",
            "--base-url",
            target,
            "--baseline-url",
            baseline,
            "--baseline-api-key-env",
            "GP_BENCH_BASELINE_KEY",
            "--scenario",
            "chat",
            "--users",
            "1",
            "--duration",
            duration,
            "--tokens",
            "8",
            "--ttft-ms",
            "0",
            "--itl-ms",
            "0",
            "--no-plot",
            "--out",
            str(out),
            *extra,
        ],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    paired = json.loads((out / "load.json").read_text())["paired"]
    assert isinstance(paired, dict)
    return paired


def _line(name: str, paired: dict[str, object]) -> str:
    metrics = paired["metrics"]
    assert isinstance(metrics, dict)
    e2e = metrics["e2e"]
    p50, mean = e2e["p50"], e2e["mean"]
    verdict = "excludes 0" if p50["low"] > 0 or p50["high"] < 0 else "straddles 0"
    return (
        f"{name:<12} pairs {paired['pairs']:>6}   added e2e p50 {p50['value']:+.3f} ms "
        f"[{p50['low']:+.3f}, {p50['high']:+.3f}] ({verdict})   mean {mean['value']:+.3f} ms "
        f"[{mean['low']:+.3f}, {mean['high']:+.3f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", default="30s", help="each run's length (default: %(default)s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gateproof-paired-"))
    with local_stack(log_dir=work / "stack") as stack:
        slow = stack.start_gateway("gateway-slow", ["--fault", "added_latency_1ms"], log_dir=work / "slow")
        try:
            run_env = {
                **os.environ,
                "GATEPROOF_API_KEY": stack.api_key,
                "GP_BENCH_BASELINE_KEY": stack.api_key,
            }
            mock_env = {**run_env, "GP_BENCH_BASELINE_KEY": stack.keys[UPSTREAM_ROLE]}
            print(f"paired runs of {args.duration}, chat, 1 user, provider delays 0 (results in {work})")
            overhead = _paired(
                work / "overhead", stack.base_url, stack.mock.url + "/v1", args.duration, mock_env,
                "--baseline-model", "gpt-4o",
            )  # fmt: skip
            print(_line("overhead", overhead))
            control = _paired(work / "control", stack.base_url, stack.base_url, args.duration, run_env)
            print(_line("control", control))
            fault = _paired(work / "fault-1ms", slow.url + "/v1", stack.base_url, args.duration, run_env)
            print(_line("1 ms fault", fault))
        finally:
            slow.stop()


if __name__ == "__main__":
    main()
