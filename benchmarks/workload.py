"""The benchmark workload: the bundled tiny transformer, more steps for more events.

--mode plain: just run it. --mode torch: run it under torch.profiler (record_shapes, as profkit does)
and export a Chrome trace, what users do today; prints the stop+export time.
--steps 0 skips training altogether: an inference-only program, which never builds an optimizer
(building one imports TorchDynamo, 1-2 s, so a training program pays that with or without a profiler).
"""

from __future__ import annotations

import argparse
import time

import torch

from profkit.examples.tiny_transformer import TinyLM, generate, train


def run(steps: int, new_tokens: int) -> None:
    torch.manual_seed(0)
    model = TinyLM()
    if steps:
        train(model, steps, batch=4, seq=64, device=torch.device("cpu"))
    model.eval()
    generate(model, torch.randint(0, 512, (2, 48)), new_tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["plain", "torch"], default="plain")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--chrome-out", default="trace.json")
    args = parser.parse_args()
    if args.mode == "plain":
        run(args.steps, args.new_tokens)
        return
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run(args.steps, args.new_tokens)
    start = time.perf_counter()
    prof.export_chrome_trace(args.chrome_out)
    print(f"EXPORT_S {time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    main()
