"""The benchmark workload: the bundled tiny transformer, more steps for more events.

--mode plain: just run it. --mode torch: run it under torch.profiler (record_shapes, as profkit does)
and export a Chrome trace, what users do today; prints the stop+export time.
--steps 0 skips training altogether: an inference-only program, which never builds an optimizer
(building one imports TorchDynamo, 1-2 s, so a training program pays that with or without a profiler).
--device cuda runs it on the GPU (torch.profiler then also records CUDA activity, as profkit does).
"""

from __future__ import annotations

import argparse
import time

import torch

from profkit.examples.tiny_transformer import TinyLM, generate, train


def run(steps: int, new_tokens: int, device: torch.device) -> None:
    torch.manual_seed(0)
    model = TinyLM().to(device)
    if steps:
        train(model, steps, batch=4, seq=64, device=device)
    model.eval()
    generate(model, torch.randint(0, 512, (2, 48), device=device), new_tokens)
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["plain", "torch"], default="plain")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--chrome-out", default="trace.json")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.mode == "plain":
        run(args.steps, args.new_tokens, device)
        return
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        run(args.steps, args.new_tokens, device)
    start = time.perf_counter()
    prof.export_chrome_trace(args.chrome_out)
    print(f"EXPORT_S {time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    main()
