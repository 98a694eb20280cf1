"""benchmarks/results/inference.md from bench_inference.py's figures: tables, peers, verdict."""

from __future__ import annotations

import statistics

from benchmarks.interleaved import (
    INTERLEAVED_PASSES,
    PIECES_PER_PASS,
    SETTLE_SECONDS,
    WORKER_SETS,
    WORKLOADS,
)

# Which row of this project each peer is compared with: equal quality, fp32 with fp32.
MATCHING_ROW = {
    "fastembed": "onnx",
    "sentence-transformers onnx": "onnx",
    "fastembed int8": "onnx int8",
}


def _cell(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def header(machine: dict, rounds: int) -> list[str]:
    peers = ", ".join(f"{name} {version}" for name, version in machine["peers"].items())
    missing = "; ".join(f"{name}: {why}" for name, why in machine["missing_peers"].items())
    return [
        "# Inference benchmark: code/inference.py (torch, onnx fp32, onnx int8) vs "
        "SentenceTransformer.encode and its peers",
        "",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, "
        f"torch {machine['torch']}, transformers {machine['transformers']}, "
        f"sentence-transformers {machine['sentence_transformers']}, onnxruntime "
        f"{machine['onnxruntime']} (vendored in code/). Model: all-MiniLM-L6-v2 (mean pooling), "
        f"{machine['graph']}; int8: that graph through quantize_graph "
        "(loader/graph_quantization.py: dynamic, per channel, reduced range). The container "
        f"sizes its intra-op threads to {machine['threads']} here (one per vCPU; with the ONNX "
        "engine these are ONNX Runtime's, and torch keeps one thread). Peers get the same "
        "thread count.",
        "",
        f"Peers (benchmarks/peers.py, each in a folder of its own beside the venv): "
        f"{peers or 'none'}. "
        f"Missing: {missing or 'none'}.",
        "",
        "Throughput: every engine and peer in a worker process of its own, as a deployment "
        f"runs it, by {WORKER_SETS} fresh sets of workers ({INTERLEAVED_PASSES} passes each, "
        f"{WORKLOADS['sentences'][3]} sentences or {WORKLOADS['passages'][3]} passages per "
        f"pass). Each pass is cut into up to {PIECES_PER_PASS} pieces (one request at least) "
        f"and the engines take each piece in turn, {SETTLE_SECONDS} s apart, so that every "
        "engine's pass spans the same stretch of time while other work on this shared machine "
        "makes its speed swing by up to 2× over a second. texts/s is the median pass, × ST the "
        "median of each pass against the reference's pass. (Loaded together in one process, the "
        "engines slowed each other by 3-10 % depending on their order.) Import + load and peak "
        "RSS (this project's engines and the reference): a fresh "
        f"process per engine, best (lowest) of {rounds} rounds and median.",
        "",
        "Quality: fp32 rows, the least cosine to sentence-transformers' vectors; int8 rows, the "
        "least cosine to the fp32 graph's (this project's onnx row), both on texts within the "
        "model's 256-token limit. Past the limit: the cosine to sentence-transformers' vector of "
        "a 400-token text, which only a truncation at the model's own limit keeps at 1.",
        "",
        f"Load average before / after: {machine['loadavg_before']} / {machine['loadavg_after']}.",
        "",
    ]


def sentence_table(rows: list[dict]) -> list[str]:
    lines = [
        "Short sentences (40 to 141 characters, 8 to 31 tokens):",
        "",
        "| engine | threads | import+load s | sent/s batch 1 | × ST | sent/s batch 32 | × ST "
        "| peak RSS MB | min cosine | against | cosine past 256 tokens |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rates, ratios = row["sentences"]["texts_per_s"], row["sentences"]["ratio_vs_st"]
        lines.append(
            f"| {row['engine']} | {row['threads']} | {_cell(row.get('import_load_s'), 2)} "
            f"| {rates['1']:.1f} | {ratios['1']:.2f} | {rates['32']:.1f} | {ratios['32']:.2f} "
            f"| {_cell(row.get('peak_rss_mb'), 0)} | {row['min_cosine']:.7f} "
            f"| {row['quality_reference']} | {row['past_limit_cosine']:.4f} |"
        )
    return lines


def passage_table(rows: list[dict]) -> list[str]:
    lines = [
        "",
        "Passages (200 to 1,199 characters, about 40 to 240 tokens):",
        "",
        "| engine | threads | passages/s batch 1 | × ST | passages/s batch 32 | × ST "
        "| × ST per pass, batch 1 / 32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        passages = row["passages"]
        rates, ratios = passages["texts_per_s"], passages["ratio_vs_st"]
        spread = " / ".join(
            f"{min(values):.2f}–{max(values):.2f}"
            for values in passages["pass_ratios_vs_st"].values()
        )
        lines.append(
            f"| {row['engine']} | {row['threads']} | {rates['1']:.1f} | {ratios['1']:.2f} "
            f"| {rates['32']:.1f} | {ratios['32']:.2f} | {spread} |"
        )
    return lines


# Every table cell of the verdict and the costs: a workload at batch 1 and 32.
CELLS = [(workload, batch) for workload in WORKLOADS for batch in ("1", "32")]


def _section(title: str, explanation: str, columns: list[str], unit: str = "") -> list[str]:
    """A results section: its title, what a cell means, and the header of its table."""
    names = [*columns, *(f"{w} batch {b}{unit}" for w, b in CELLS)]
    return [
        "",
        title,
        "",
        explanation,
        "",
        "| " + " | ".join(names) + " |",
        "|---" * len(names) + "|",
    ]


def verdict(rows: list[dict], threads: int) -> list[str]:
    """This project's row against each peer of equal quality, every cell, at `threads`."""
    by_engine = {row["engine"]: row for row in rows if row["threads"] == threads}
    lines = _section(
        f"## This project against each peer of equal quality, {threads} threads",
        "Each cell: the median over the passes of this project's texts/s over the peer's in the "
        "same pass (above 1: this project is ahead), and in brackets the passes' least and "
        "greatest.",
        ["this project", "peer"],
    )
    behind, mixed = [], []
    for peer, ours in MATCHING_ROW.items():
        if peer not in by_engine or ours not in by_engine:
            continue
        cells = []
        for workload, batch in CELLS:
            ratios = pass_ratios(
                by_engine[ours][workload]["pass_rates"][batch],
                by_engine[peer][workload]["pass_rates"][batch],
            )
            lead, below = statistics.median(ratios), sum(ratio < 1 for ratio in ratios)
            where = f"{peer} ({workload} batch {batch}"
            if lead < 1:
                behind.append(f"{where})")
            elif below:
                mixed.append(f"{where}: {below} of {len(ratios)} passes)")
            cells.append(f"{lead:.3f} ({min(ratios):.2f}–{max(ratios):.2f})")
        lines.append(f"| {ours} | {peer} | " + " | ".join(cells) + " |")
    ahead = "Ahead on every cell at the median."
    lines += ["", f"Behind on: {', '.join(behind)}." if behind else ahead]
    if mixed:
        lines += ["", f"Behind in some passes: {', '.join(mixed)}."]
    return lines


def pass_ratios(ours: list[float], theirs: list[float]) -> list[float]:
    """Each pass's texts/s over the other engine's in the same pass (their pieces alternated)."""
    return [mine / other for mine, other in zip(ours, theirs, strict=True)]


def outside_table(rows: list[dict], threads: int) -> list[str]:
    """µs per text outside `session.run`, for the engines on the same graph (ours, fastembed).

    The forward pass is the same graph on the same runtime for both, and 85-90 % of a batch-1
    request; what differs is the request around it, which this splits out of the rates.
    """
    by_engine = {row["engine"]: row for row in rows if row["threads"] == threads}
    lines = _section(
        f"## Outside session.run, {threads} threads",
        "Each cell: µs per text spent outside ONNX Runtime's `session.run`, the median pass "
        "(this project: JSON in, tokenizer, feeds, what follows the run, JSON out; fastembed: "
        "its texts in, numpy out). Lower is faster.",
        ["engine"],
        " µs",
    )
    pairs = [(ours, peer) for peer, ours in MATCHING_ROW.items() if peer.startswith("fastembed")]
    for engine in [name for pair in pairs for name in pair]:
        row = by_engine.get(engine)
        if row is None or any("outside_us" not in row[w] for w, _ in CELLS):
            continue
        spent = [row[w]["outside_us"][b] for w, b in CELLS]
        lines.append(f"| {engine} | " + " | ".join(f"{value:.0f}" for value in spent) + " |")
    return lines


# The memory size the cost table prices: the preview's size for all-MiniLM-L6-v2 on either graph.
COST_MEMORY_MB = 2048


def cost_table(rows: list[dict], threads: int, memory_mb: int = COST_MEMORY_MB) -> list[str]:
    """Serverless compute $ per million embeddings from this run's rates (facts/pricing.py)."""
    from facts.pricing import PRICES_AS_OF, PRICES_REGION, serverless_cost

    by_engine = {row["engine"]: row for row in rows if row["threads"] == threads}
    lines = _section(
        f"## Cost per million embeddings, {threads} threads, memorySizeMb {memory_mb}",
        "Compute only: 10⁶ texts ÷ the rate above × the memory's GB × the per-GB-second price "
        f"(`facts.pricing.serverless_cost`, {PRICES_REGION}, as of {PRICES_AS_OF}); data "
        "processed adds the same for both graphs. A serverless endpoint's vCPUs are not this "
        "machine's: the ratio between the rows is the figure that carries over.",
        ["engine"],
        " $",
    )
    for engine in ("onnx", "onnx int8"):
        if engine not in by_engine:
            continue
        rates = [by_engine[engine][w]["texts_per_s"][b] for w, b in CELLS]
        costs = [serverless_cost(1e6 / rate, memory_mb, 0) for rate in rates]
        lines.append(f"| {engine} | " + " | ".join(f"{cost:.3f}" for cost in costs) + " |")
    return lines
