"""lakefine's performance and scale benchmark: one command, one table of ratios
measured side by side in the same run, written as JSON too.

    OMP_NUM_THREADS=1 .venv/bin/python bench/run.py [--quick] [--out bench/results/latest.json]

Every measurement runs in a process of its own (bench/workers.py), one after another,
so no two share a driver, a JVM or an allocator. See bench/README.md for the rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

MODES = {
    # quick: < 10 minutes on 2 cores; the handoff's large size is 300k rows instead of 1M
    "quick": {
        "sizes": [100_000, 300_000],
        "handoff_repeats": 2,
        "label_rows": 1_000_000,
        "repeats": 3,
        "train_steps": {"lakefine": 8, "dynamic_random": 8, "pad_128": 3, "pad_512": 1},
        "e2e_overrides": ["train.max_steps=50"],
        "score_rows": 10_000,
        "prepare_rows": [100_000, 1_000_000],
    },
    "full": {
        "sizes": [100_000, 1_000_000],
        "handoff_repeats": 3,
        "label_rows": 1_000_000,
        "repeats": 5,
        "train_steps": {"lakefine": 40, "dynamic_random": 40, "pad_128": 10, "pad_512": 3},
        "e2e_overrides": [],
        "score_rows": 50_000,
        "prepare_rows": [1_000_000, 10_000_000],  # 10M: ~3 GB of source and dataset on disk, removed after
    },
}
HANDOFF_METHODS = ["lakefine_from_spark", "lakefine_parquet", "plain_from_spark", "pandas", "spark_parquet"]
WORKER_TIMEOUT_S = 1800


def run_worker(section: str, params: dict, log_dir: Path) -> dict:
    """One measurement in a fresh process; its output goes to a log file."""
    name = section + "".join(f"-{v}" for k, v in sorted(params.items()) if k in ("method", "rows"))
    out = log_dir / f"{name}.json"
    log = log_dir / f"{name}.log"
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with open(log, "w") as handle:
        proc = subprocess.run(
            [sys.executable, str(BENCH / "workers.py"), section, json.dumps(params), str(out)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            timeout=WORKER_TIMEOUT_S,
        )
    seconds = time.perf_counter() - started
    print(
        f"  {name:<40} {seconds:6.1f} s  (load {load_before:.1f} -> {os.getloadavg()[0]:.1f})",
        file=sys.stderr,
        flush=True,
    )
    if proc.returncode != 0 or not out.is_file():
        tail = log.read_text().splitlines()[-15:]
        print("\n".join("    | " + line for line in tail), file=sys.stderr)
        return {"error": f"exit code {proc.returncode}; see {log}", "process_seconds": seconds}
    result = json.loads(out.read_text())
    result["process_seconds"] = seconds
    result["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


# ------------------------------------------------------------------------------ checks


def check(section, name, lakefine, baseline, ratio, target, ok, reason="", info=False, note=""):
    """One table row. ``reason`` (why a target is missed) is kept only when it is missed;
    ``note`` is context shown either way."""
    status = "info" if info else ("met" if ok else "NOT MET")
    return {
        "section": section,
        "check": name,
        "lakefine": lakefine,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "status": status,
        "reason": "" if ok or info else reason,
        "note": note,
    }


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f}M/s" if x >= 1e6 else f"{x / 1e3:.0f}k/s" if x >= 1e3 else f"{x:.1f}/s"


def size_name(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def handoff_checks(results: dict, sizes: list[int]) -> list[dict]:
    rows = []
    small, large = sizes
    for n in sizes:
        lf, plain = results.get(("lakefine_from_spark", n)), results.get(("plain_from_spark", n))
        if _ok(lf, plain):
            ratio = lf["seconds"] / plain["seconds"]
            d = lf.get("diagnosis", {})
            reason = (
                f"of lakefine's {lf['seconds']:.1f}s, {d['order_shuffle_sort_s']:.1f}s is the range partition +"
                " sort by (split, row_hash) (one shuffle: the stable row order and zero-copy splits);"
                " plain from_spark has none"
                if d
                else ""
            )
            rows.append(
                check(
                    "1 handoff",
                    f"from_spark path time / plain Dataset.from_spark @{size_name(n)}",
                    f"{lf['seconds']:.2f}s",
                    f"{plain['seconds']:.2f}s",
                    f"{ratio:.2f}x",
                    "<= 1.10x",
                    ratio <= 1.10,
                    reason,
                )
            )
    for n in sizes:
        lf, floor = results.get(("lakefine_parquet", n)), results.get(("spark_parquet", n))
        if _ok(lf, floor):
            ratio = lf["rows_per_s"] / floor["rows_per_s"]
            d = lf.get("diagnosis", {})
            reason = (
                f"the floor only writes ({floor['seconds']:.1f}s); lakefine adds the range partition + sort"
                f" {d['order_shuffle_sort_s']:.1f}s and Parquet->Arrow in the driver"
                f" {d['parquet_to_arrow_in_driver_s']:.1f}s (total {lf['seconds']:.1f}s)"
                if d
                else ""
            )
            rows.append(
                check(
                    "1 handoff",
                    f"parquet path rows/s / Spark Parquet write (floor) @{size_name(n)}",
                    fmt_rate(lf["rows_per_s"]),
                    fmt_rate(floor["rows_per_s"]),
                    f"{ratio:.2f}x",
                    ">= 0.80x",
                    ratio >= 0.8,
                    reason,
                )
            )
    for method in ("lakefine_from_spark", "lakefine_parquet", "pandas"):
        a, b = results.get((method, small)), results.get((method, large))
        if not _ok(a, b):
            continue
        ga, gb = a["peak_growth_mb"], b["peak_growth_mb"]
        ratios = {p: max(gb[p], 1.0) / max(ga[p], 1.0) for p in ("driver", "jvm")}
        worst = max(ratios, key=ratios.get)
        label = {
            "lakefine_from_spark": "lakefine from_spark",
            "lakefine_parquet": "lakefine parquet",
            "pandas": "toPandas+from_pandas",
        }[method]
        reason = _memory_reason(method, worst, ga, gb)
        rows.append(
            check(
                "1 handoff",
                f"{label}: peak memory growth {size_name(large)} / {size_name(small)} (driver, JVM)",
                f"{gb['driver']:.0f}, {gb['jvm']:.0f} MB",
                f"{ga['driver']:.0f}, {ga['jvm']:.0f} MB",
                f"{ratios['driver']:.2f}x, {ratios['jvm']:.2f}x",
                "< 1.30x" if method != "pandas" else "(contrast)",
                all(r < 1.3 for r in ratios.values()),
                reason,
                info=method == "pandas",
                note="in memory, no Arrow file; grows with the rows"
                if method == "pandas"
                else f"Python workers (PSS): {a['peak_growth_mb']['workers']:.0f} -> {b['peak_growth_mb']['workers']:.0f} MB",
            )
        )
    return rows


def _memory_reason(method: str, process: str, small: dict, large: dict) -> str:
    """Why the driver or the JVM grew more than 1.3x, from the anonymous / file-backed split."""

    def split(key):
        return f"{small[key]:.0f} -> {large[key]:.0f}"

    if process == "driver":
        grew = (
            f"driver RSS {split('driver')} MB (anonymous {split('driver_anon')}, memory-mapped files"
            f" {split('driver_file')})"
        )
        if method == "lakefine_parquet":
            return (
                grew + ": Dataset.from_parquet converts in the driver and reads each Spark row group (one"
                " per partition file, up to 128 MB) as one batch, so its peak follows rows per partition"
            )
        return (
            grew + ": reading the shards back (row order, row count) maps their pages; anonymous memory"
            " is what does not scale away"
        )
    return (
        f"JVM RSS {split('jvm')} MB (anonymous {split('jvm_anon')}): the range partition's shuffle +"
        " sort buffers hold a partition in execution memory until it spills; the heap grows to fit"
    )


def labels_checks(res: dict) -> list[dict]:
    if not _ok(res):
        return []
    udf, native = res["pandas_udf"]["rows_per_s"], res["create_map"]["rows_per_s"]
    return [
        check(
            "2 label ids",
            f"pandas_udf (lakefine) rows/s / native create_map @{size_name(res['rows'])}",
            fmt_rate(udf),
            fmt_rate(native),
            f"{udf / native:.2f}x",
            "(no target)",
            True,
            info=True,
            note="create_map stays in the JVM (no Arrow round trip to Python workers); prepare evaluates the"
            " ids twice (content digest, handoff)",
        )
    ]


def tokenization_checks(res: dict) -> list[dict]:
    if not _ok(res):
        return []
    ratio = res["lakefine_texts_per_s"] / res["raw_texts_per_s"]
    map_rest = res["lakefine_s"] - res["hf_tokenizer_call_s"]
    reason = (
        f"the transformers tokenizer call builds Python lists of 3 fields ({res['hf_tokenizer_call_s']:.2f}s;"
        f" input_ids only: {res['hf_tokenizer_call_ids_only_s']:.2f}s, raw: {res['raw_s']:.2f}s) and Dataset.map"
        f" converts + writes them to Arrow (~{max(0.0, map_rest):.2f}s)"
    )
    return [
        check(
            "3 tokenization",
            f"lakefine tokenize texts/s / raw tokenizers encode_batch ({res['texts']:,} RT"
            f" texts, max_length {res['max_length']})",
            fmt_rate(res["lakefine_texts_per_s"]),
            fmt_rate(res["raw_texts_per_s"]),
            f"{ratio:.2f}x",
            ">= 0.80x",
            ratio >= 0.8,
            reason,
            note=f"a rerun reads the cache: {res['lakefine_cached_s']:.2f}s",
        )
    ]


def training_checks(res: dict) -> list[dict]:
    if not _ok(res):
        return []
    lf = res["lakefine"]
    res = {**res, "load_average_1m": res.get("load_average_1m", ["?"])}
    rows = [
        check(
            "4 training",
            f"padding efficiency, lakefine defaults (dynamic + group_by_length, max_length"
            f" {res['max_length']}), whole epoch",
            f"{lf['padding_efficiency_epoch']:.3f}",
            f"random batches {res['dynamic_random']['padding_efficiency_epoch']:.3f}",
            "",
            ">= 0.95",
            lf["padding_efficiency_epoch"] >= 0.95,
            "length-grouped megabatches still mix lengths within a batch",
        )
    ]
    targets = {"pad_512": 50.0, "pad_128": 4.0, "dynamic_random": 1.7}
    labels = {
        "pad_512": "pad every example to 512",
        "pad_128": "pad to 128",
        "dynamic_random": "dynamic padding, random batches",
    }
    for name, target in targets.items():
        other = res[name]
        ratio = lf["non_pad_tokens_per_s"] / other["non_pad_tokens_per_s"]
        share = lf["optimizer_seconds_per_step"] / lf["seconds_per_step"]
        reason = (
            f"short batches cost more per token: lakefine {lf['seconds_per_step']:.2f}s/step at"
            f" {lf['padded_length_mean']:.0f} tokens (optimizer {share:.0%} of it) vs"
            f" {other['seconds_per_step']:.2f}s/step at {other['padded_length_mean']:.0f}; few timed steps on a"
            f" shared machine (load {res.get('load_average_1m', ['?'])[0]})"
        )
        rows.append(
            check(
                "4 training",
                f"non-pad tokens/s, lakefine / {labels[name]} (batch {res['batch_size']},"
                f" {lf['steps']} vs {other['steps']} steps)",
                f"{lf['non_pad_tokens_per_s']:.0f}/s",
                f"{other['non_pad_tokens_per_s']:.1f}/s",
                f"{ratio:.1f}x",
                f">= {target:g}x",
                ratio >= target,
                reason,
                note=f"{lf['seconds_per_step']:.2f} vs {other['seconds_per_step']:.2f} s/step, padded length"
                f" {lf['padded_length_mean']:.0f} vs {other['padded_length_mean']:.0f}",
            )
        )
    return rows


def e2e_checks(res: dict) -> list[dict]:
    if not _ok(res):
        return []
    wall, train = res["wall_seconds"], res["train_timings"]["train"]
    non_training = wall - train
    steps_epoch = math.ceil(res["train_rows"] / res["batch_size"])
    measured_steps = res["max_steps"] if res["max_steps"] > 0 else steps_epoch
    projected = non_training + train * steps_epoch / measured_steps
    prep, tt = res["prepare_timings"], res["train_timings"]
    parts = (
        f"Spark start {prep.get('spark_start', 0):.0f}s, prepare {prep.get('prepare_total', 0):.0f}s"
        f" (handoff {prep.get('handoff', 0):.0f}s), tokenize {tt.get('tokenize', 0):.0f}s, evaluate+predict"
        f" {tt.get('evaluate', 0):.0f}s, log+register model {tt.get('log_model', 0):.0f}s"
    )
    name = "end to end wall" + (
        f", projected to 1 epoch ({steps_epoch} steps) from {measured_steps} measured"
        if measured_steps != steps_epoch
        else f" (1 epoch, {steps_epoch} steps)"
    )
    per_step = f"Trainer.train {train:.0f}s for {measured_steps} steps ({train / measured_steps:.2f}s/step)"
    return [
        check(
            "5 end to end",
            name,
            f"{projected:.0f}s",
            f"measured {wall:.0f}s" if measured_steps != steps_epoch else "",
            "",
            "< 600s",
            projected < 600,
            f"{per_step}; {parts}",
            note=per_step
            + (
                "; the projection scales the in-training eval + checkpoint too (conservative)"
                if measured_steps != steps_epoch
                else ""
            ),
        ),
        check(
            "5 end to end",
            "non-training time (wall - Trainer.train)",
            f"{non_training:.0f}s",
            "",
            "",
            "< 90s",
            non_training < 90,
            parts,
            note=parts,
        ),
    ]


def scoring_checks(res: dict) -> list[dict]:
    lf, udf, naive = (res.get(m) for m in ("lakefine", "spark_udf", "naive"))
    rows = []
    if _ok(lf, udf):
        ratio = lf["rows_per_s"] / udf["rows_per_s"]
        rows.append(
            check(
                "6 scoring",
                f"lakefine score rows/s / mlflow.pyfunc.spark_udf (same MiniLM model, {lf['rows']:,} RT texts, local[2])",
                fmt_rate(lf["rows_per_s"]),
                fmt_rate(udf["rows_per_s"]),
                f"{ratio:.2f}x",
                ">= 2x",
                ratio >= 2,
                "both load the model once per Python worker; the difference left is batching and padding",
                note=f"{lf['seconds']:.0f} s vs {udf['seconds']:.0f} s, model loads included",
            )
        )
    if _ok(lf, naive):
        rows.append(
            check(
                "6 scoring",
                f"lakefine score rows/s / a pandas UDF loading the model in every Arrow batch ({ARROW_ROWS} rows)",
                fmt_rate(lf["rows_per_s"]),
                fmt_rate(naive["rows_per_s"]),
                f"{lf['rows_per_s'] / naive['rows_per_s']:.2f}x",
                "(no target)",
                True,
                info=True,
            )
        )
    padding = res.get("padding")
    if _ok(padding):
        rows.append(
            check(
                "6 scoring",
                "padding efficiency of the scoring batches (sorted by length within each Arrow batch)",
                f"{padding['lakefine']:.3f}",
                f"arrival order {padding['arrival_order']:.3f}",
                "",
                ">= 0.90",
                padding["lakefine"] >= 0.9,
                "rows of one Arrow batch span many lengths",
            )
        )
    return rows


ARROW_ROWS = 1000  # bench/workers.py ARROW_BATCH_ROWS
MEMORY_ROWS = (10_000, 100_000)


def scoring_memory_checks(res: dict) -> list[dict]:
    small, large = (res.get(n) for n in MEMORY_ROWS)
    if not _ok(small, large):
        return []
    ratio = large["peak_worker_rss_mb"] / small["peak_worker_rss_mb"]
    return [
        check(
            "6 scoring",
            f"peak Python-worker RSS, lakefine score of {MEMORY_ROWS[1]:,} vs {MEMORY_ROWS[0]:,} rows"
            " (tiny model: the same worker, model cache and batching)",
            f"{large['peak_worker_rss_mb']:.0f} MB",
            f"{small['peak_worker_rss_mb']:.0f} MB",
            f"{ratio:.2f}x",
            "< 1.3x",
            ratio < 1.3,
            "a worker's memory grows with the rows it scores",
            note=f"{large['python_workers']} and {small['python_workers']} Python worker processes observed;"
            f" {large['rows_per_s']:.0f} and {small['rows_per_s']:.0f} rows/s",
        )
    ]


def prepare_scaling_checks(res: dict) -> list[dict]:
    """Whole-prepare scaling: seconds per million rows and memory growth, large vs small."""
    sizes = sorted(int(n) for n in res)
    if len(sizes) < 2 or not _ok(*(res[n] for n in sizes)):
        return []
    small, large = res[sizes[0]], res[sizes[-1]]
    label = f"{size_name(sizes[-1])} vs {size_name(sizes[0])}"
    stages = ", ".join(
        f"{k} {v:.1f}s" for k, v in large["timings"].items() if k not in ("prepare_total", "spark_start")
    )
    per_m = large["seconds_per_million_rows"] / small["seconds_per_million_rows"]
    rows = [
        check(
            "8 prepare",
            f"seconds per million rows, {label} (where the time goes at {size_name(sizes[-1])}: {stages})",
            f"{large['seconds_per_million_rows']:.1f}s",
            f"{small['seconds_per_million_rows']:.1f}s",
            f"{per_m:.2f}x",
            "<= 1.15x",
            per_m <= 1.15,
            "the larger run spends more per row: see the stage times",
        )
    ]
    for n in sizes:
        first = res[n].get("first_step")
        if first:
            rows.append(
                check(
                    "8 prepare",
                    f"train on the {size_name(n)}-row dataset in a new process without Spark: fit() entry to the"
                    f" first optimizer step (tiny model; the ids open {first['tokenize_s']:.1f}s; before fit():"
                    f" process start, imports, config {first['before_fit_s']:.1f}s)",
                    f"{first['fit_to_first_step_s']:.1f}s",
                    "",
                    "",
                    "< 10s",
                    first["fit_to_first_step_s"] < 10,
                    "see where the seconds before the first step go",
                )
            )
    for process in ("driver", "jvm"):
        grown = [r["memory"]["peak_growth_mb"][process] for r in (large, small)]
        ratio = grown[0] / max(grown[1], 1.0)
        rows.append(
            check(
                "8 prepare",
                f"{process} memory growth during prepare, {label}",
                f"{grown[0]:.0f} MB",
                f"{grown[1]:.0f} MB",
                f"{ratio:.2f}x",
                "< 1.3x",
                ratio < 1.3,
                f"the {process} holds more at {size_name(sizes[-1])} rows",
            )
        )
    return rows


def _ok(*results) -> bool:
    return all(r is not None and "error" not in r for r in results)


# ------------------------------------------------------------------------------ output


def print_table(rows: list[dict], header: str) -> None:
    columns = [
        ("#", 2),
        ("section", 14),
        ("check", 0),
        ("lakefine", 0),
        ("baseline", 0),
        ("ratio", 0),
        ("target", 0),
        ("status", 7),
        ("why not met / note", 0),
    ]
    table = [
        [
            str(i + 1),
            r["section"],
            r["check"],
            r["lakefine"],
            r["baseline"],
            r["ratio"],
            r["target"],
            r["status"],
            ("WHY: " + r["reason"]) if r["reason"] else r["note"],
        ]
        for i, r in enumerate(rows)
    ]
    widths = [max([len(name)] + [len(line[i]) for line in table]) for i, (name, _) in enumerate(columns)]
    widths[-1] = len(columns[-1][0])  # the reason column is last: not padded

    def line(cells):
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    print(header)
    print(line([c for c, _ in columns]))
    print("-+-".join("-" * w for w in widths))
    for cells in table:
        print(line(cells))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="< 10 minutes: handoff at 100k and 300k rows, fewer training steps, end to end with train.max_steps=50",
    )
    parser.add_argument("--out", default=str(BENCH / "results" / "latest.json"))
    parser.add_argument("--score-rows", type=int, help="rows for the scoring section (default: 10k quick, 50k full)")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="sections to run (handoff labels tokenization training end_to_end prepare_scaling scoring scoring_memory)",
    )
    parser.add_argument("--prepare-rows", type=int, nargs="*", help="sizes for prepare_scaling (default by mode)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    sections = args.only or [
        "handoff",
        "labels",
        "tokenization",
        "training",
        "end_to_end",
        "prepare_scaling",
        "scoring",
    ]
    if not args.only and mode == "full":
        sections.append("scoring_memory")  # 100k rows: full mode only
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="lakefine-bench-"))
    env_note = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}"
    print(f"[bench] {mode} mode, logs in {log_dir}, {env_note}", file=sys.stderr)
    started = time.perf_counter()
    load_start = os.getloadavg()

    raw: dict = {}
    rows: list[dict] = []
    if "handoff" in sections:
        results = {}
        for n in cfg["sizes"]:
            for method in HANDOFF_METHODS:
                results[(method, n)] = run_worker(
                    "handoff",
                    {
                        "method": method,
                        "rows": n,
                        "repeats": cfg["handoff_repeats"],
                        "diagnose": method.startswith("lakefine_"),
                    },
                    log_dir,
                )
        raw["handoff"] = {f"{m}@{n}": r for (m, n), r in results.items()}
        rows += handoff_checks(results, cfg["sizes"])
    if "labels" in sections:
        raw["labels"] = run_worker("labels", {"rows": cfg["label_rows"], "repeats": cfg["repeats"]}, log_dir)
        rows += labels_checks(raw["labels"])
    if "tokenization" in sections:
        raw["tokenization"] = run_worker("tokenization", {"repeats": cfg["repeats"]}, log_dir)
        rows += tokenization_checks(raw["tokenization"])
    if "training" in sections:
        raw["training"] = run_worker("training", {"steps": cfg["train_steps"]}, log_dir)
        rows += training_checks(raw["training"])
    if "end_to_end" in sections:
        raw["end_to_end"] = run_worker("end_to_end", {"overrides": cfg["e2e_overrides"]}, log_dir)
        rows += e2e_checks(raw["end_to_end"])
    if "prepare_scaling" in sections:
        raw["prepare_scaling"] = {
            # the training side's start is measured on the 1M-row dataset, in both modes
            n: run_worker("prepare_scaling", {"rows": n, "first_step": n == 1_000_000}, log_dir)
            for n in (args.prepare_rows or cfg["prepare_rows"])
        }
        rows += prepare_scaling_checks(raw["prepare_scaling"])
    if "scoring" in sections:
        score_root = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
        setup = run_worker(
            "scoring_setup", {"root": str(score_root), "rows": args.score_rows or cfg["score_rows"]}, log_dir
        )
        raw["scoring"] = {"setup": setup}
        if _ok(setup):
            for method in ("lakefine", "spark_udf", "naive"):
                raw["scoring"][method] = run_worker("scoring", {"root": str(score_root), "method": method}, log_dir)
            raw["scoring"]["padding"] = run_worker(
                "scoring_padding", {"rows": setup["rows"], "max_length": setup["max_length"]}, log_dir
            )
        rows += scoring_checks(raw["scoring"])
    if "scoring_memory" in sections:
        raw["scoring_memory"] = {}
        for n in MEMORY_ROWS:
            memory_root = Path(tempfile.mkdtemp(prefix="bench-scoring-memory-"))
            setup = run_worker(
                "scoring_setup", {"root": str(memory_root), "rows": n, "model": "tiny-random-bert"}, log_dir
            )
            if _ok(setup):
                raw["scoring_memory"][n] = run_worker(
                    "scoring", {"root": str(memory_root), "method": "lakefine"}, log_dir
                )
            shutil.rmtree(memory_root, ignore_errors=True)
        rows += scoring_memory_checks(raw["scoring_memory"])

    measurements = {
        **{f"handoff {k}": v for k, v in raw.get("handoff", {}).items()},
        **{k: v for k, v in raw.items() if k not in ("handoff", "scoring", "scoring_memory", "prepare_scaling")},
        **{f"scoring {k}": v for k, v in raw.get("scoring", {}).items()},
        **{f"scoring_memory {k}": v for k, v in raw.get("scoring_memory", {}).items()},
        **{f"prepare_scaling {k}": v for k, v in raw.get("prepare_scaling", {}).items()},
    }
    errors = {k: v["error"] for k, v in measurements.items() if "error" in v}
    total = time.perf_counter() - started
    meta = {
        "mode": mode,
        "sizes": cfg["sizes"],
        "train_steps": cfg["train_steps"],
        "e2e_overrides": cfg["e2e_overrides"],
        "score_rows": args.score_rows or cfg["score_rows"],
        "seconds": round(total, 1),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "errors": errors,
    }
    out.write_text(json.dumps({"meta": meta, "checks": rows, "raw": raw}, indent=2, default=str))
    header = (
        f"lakefine bench ({mode}; handoff at {' and '.join(size_name(n) for n in cfg['sizes'])} rows"
        + (f"; end to end with {' '.join(cfg['e2e_overrides'])}" if cfg["e2e_overrides"] else "")
        + f"; {os.cpu_count()} CPUs, load average {load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end;"
        f" {total:.0f} s)"
    )
    print_table(rows, header)
    met = sum(r["status"] == "met" for r in rows)
    missed = sum(r["status"] == "NOT MET" for r in rows)
    print(f"{met} met, {missed} not met; JSON: {out}" + (f"; errors: {errors}" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
