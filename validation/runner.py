"""Command line and orchestration: run the claims, write their JSON atomically, resume, report.

``--scheduler tcp://HOST:PORT`` runs each claim as a task on a Dask cluster (the path of ``rmt_init.sweep``;
``pure=False, retries=1``): the records come back to this process, which writes them as they arrive; the
claims write their figures into ``--out`` themselves, so the workers must see that folder (the same machine or
a shared file system)."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from . import CLAIMS, SIZES
from .common import atomic_write_json, atomic_write_text, config_for
from .report import render_html, render_report, summary


def load_claim(name: str) -> Any:
    return importlib.import_module(f"validation.claims.{name}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m validation",
        description="Check rmt_init's theory against Monte Carlo, claim by claim, with derived tolerances.",
    )
    parser.add_argument("--size", default="default", choices=SIZES, help="problem sizes (default: default)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: validation_results/<size>)")
    parser.add_argument("--only", default=None, help=f"comma-separated claims to run; valid: {', '.join(CLAIMS)}")
    parser.add_argument("--resume", action="store_true",
                        help="skip claims whose JSON already exists with the same size and configuration")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device")
    parser.add_argument("--scheduler", default=None,
                        help="Dask scheduler address (tcp://HOST:PORT): each claim a task; workers must see --out")
    args = parser.parse_args(argv)
    if args.only is None:
        args.claims = list(CLAIMS)
    else:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in CLAIMS]
        if unknown or not names:
            parser.error(f"unknown claim(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"valid choices: {', '.join(CLAIMS)}")
        args.claims = [n for n in CLAIMS if n in names]
    if args.out is None:
        args.out = Path("validation_results") / args.size
    return args


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available; valid choices: auto, cpu, cuda")
    return device


def existing(path: Path, size: str, config: dict) -> dict | None:
    """The stored record if it exists, is readable and was made with this size and configuration."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("size") == size and rec.get("config") == config and "passed" in rec:
        return rec
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    import torch

    threads = torch.get_num_threads()
    if device == "cpu" and args.size in ("smoke", "default"):
        # matrices of width ≤ 256: intra-op threads only add synchronisation cost, and on a shared 2-core
        # machine they oversubscribe (the BN claim ran 20× slower with 2 threads next to another job)
        torch.set_num_threads(1)
    try:
        return _run(args, device, out)
    finally:
        torch.set_num_threads(threads)


def run_claim(name: str, size: str, device: str, out: str | Path) -> dict:
    """Run one claim and time it (a task on a Dask worker, or in this process)."""
    import matplotlib

    matplotlib.use("Agg")
    t0 = time.perf_counter()
    rec = load_claim(name).run(size, device, Path(out))
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _finish(rec: dict, i: int, n: int, name: str, path: Path, records: list[dict]) -> None:
    rec["finished_at"] = time.time()
    atomic_write_json(path, rec)
    records.append(rec)
    failed = [c["name"] for c in rec["checks"] if not c["passed"]]
    print(f"[{i}/{n}] {name}: {'PASS' if rec['passed'] else 'FAIL'} "
          f"({len(rec['checks']) - len(failed)}/{len(rec['checks'])} checks) in {rec['seconds']:.1f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)


def _run_on_dask(scheduler: str, pending: list[tuple[int, str]], n: int, size: str, device: str, out: Path,
                 records: list[dict]) -> None:
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        futures = {client.submit(run_claim, name, size, device, str(out), pure=False, retries=1): (i, name)
                   for i, name in pending}
        try:
            for future in as_completed(list(futures)):
                i, name = futures[future]
                _finish(future.result(), i, n, name, out / f"{name}.json", records)
        except BaseException:
            client.cancel(list(futures))
            raise


def _run(args: argparse.Namespace, device: str, out: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    records: list[dict] = []
    n = len(args.claims)
    start_all = time.perf_counter()
    pending: list[tuple[int, str]] = []
    try:
        for i, name in enumerate(args.claims, 1):
            module = load_claim(name)
            path = out / f"{name}.json"
            config = config_for(module, args.size, device)
            if args.resume:
                rec = existing(path, args.size, config)
                if rec is not None:
                    print(f"[{i}/{n}] {name}: resumed ({'PASS' if rec['passed'] else 'FAIL'}, stored)", flush=True)
                    records.append(rec)
                    continue
            if args.scheduler:
                print(f"[{i}/{n}] {name}: submitted ({args.size}, {device}) to {args.scheduler}", flush=True)
                pending.append((i, name))
                continue
            print(f"[{i}/{n}] {name}: running ({args.size}, {device})", flush=True)
            t0 = time.perf_counter()
            rec = module.run(args.size, device, out)
            rec["seconds"] = time.perf_counter() - t0
            _finish(rec, i, n, name, path, records)
        if pending:
            _run_on_dask(args.scheduler, pending, n, args.size, device, out, records)
            records.sort(key=lambda r: args.claims.index(r["claim"]))
    except KeyboardInterrupt:
        print(f"\ninterrupted: {len(records)} claim(s) complete in {out}; rerun with --resume to continue",
              file=sys.stderr, flush=True)
        return 130
    atomic_write_text(out / "report.md", render_report(records, args.size, device))
    atomic_write_text(out / "report.html", render_html(records, args.size, device, out,
                                                       time.perf_counter() - start_all))
    atomic_write_json(out / "summary.json", summary(records, args.size, device, time.perf_counter() - start_all))
    ok = all(r["passed"] for r in records)
    print(f"{'ALL PASSED' if ok else 'SOME CLAIMS FAILED'}: {sum(r['passed'] for r in records)}/{len(records)} "
          f"claims; report: {out / 'report.md'} ({time.perf_counter() - start_all:.1f} s)", flush=True)
    return 0 if ok else 1
