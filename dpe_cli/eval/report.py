"""Presenting scores: rich tables in the paper's layout, CSV files and a PNG plot over time."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from dpe_cli.eval.scoring import HIGHER_IS_BETTER, METRICS

LABELS = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "csim": "CSIM", "aed": "AED", "apd": "APD"}
UNITS = {"psnr": "dB", "ssim": "", "lpips": "", "csim": "cosine", "aed": "inter-ocular distances", "apd": "degrees"}
DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4, "csim": 4, "aed": 4, "apd": 2}

# The paper's tables: title and, per setting, its columns in the paper's order.
PAPER_TABLES: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "expression": ("Table 1: expression editing", {"same": ("csim", "aed", "apd"), "cross": ("csim", "aed", "apd")}),
    "pose": ("Table 2: pose editing", {"same": ("csim", "aed", "apd"), "cross": ("csim", "aed", "apd")}),
    "both": (
        "Table 3: one-shot talking-face generation",
        {"same": ("csim", "lpips", "psnr", "ssim", "aed", "apd"), "cross": ("csim", "aed", "apd")},
    ),
}
SETTINGS = {"same": "Same-id", "cross": "Cross-id"}
FOOTNOTE = (
    "AED (inter-ocular distances) and APD (degrees) come from the MediaPipe face mesh, "
    "not the paper's 3DMM coefficients: compare them between models, not with the paper."
)


def arrow(metric: str) -> str:
    return "↑" if HIGHER_IS_BETTER[metric] else "↓"


def fmt(metric: str, value: float | None, capped: bool = False) -> str:
    """A metric for display: '-' when not measured, a '*' on a PSNR mean that includes capped frames."""
    if value is None:
        return "-"
    text = f"{value:.{DIGITS[metric]}f}"
    return f"{text}*" if metric == "psnr" and capped else text


def compare_table(summary: dict[str, Any], against: dict[str, str]) -> Table:
    """``dpe eval compare``: one row per metric with its mean and what it was measured against."""
    table = Table(title=f"{summary['frames']} frames, {summary['frames_without_face']} without a face")
    for name in ("metric", "mean", "unit", "against"):
        table.add_column(name, justify="right" if name == "mean" else "left")
    for metric in METRICS:
        value = fmt(metric, summary[metric], summary["psnr_capped"])
        table.add_row(f"{LABELS[metric]} {arrow(metric)}", value, UNITS[metric], against.get(metric, ""))
    return table


def table_metrics(keys: Iterable[tuple[str, str]]) -> set[str]:
    """The metrics the paper's tables show for these (mode, setting) pairs."""
    return {metric for mode, setting in keys for metric in PAPER_TABLES[mode][1][setting]}


def paper_table(mode: str, pooled: dict[tuple[str, str], dict[str, Any]], models: Sequence[str]) -> Table:
    """One of the paper's tables: a row per model, column groups per identity setting.

    ``pooled[(model, setting)]`` is the summary over all the setting's frames; a setting
    without jobs is left out. A group's name tops its first column, in place of the paper's
    spanning header."""
    title, groups = PAPER_TABLES[mode]
    settings = [s for s in groups if any((m, s) in pooled for m in models)]
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("\nMethod", no_wrap=True)
    for setting in settings:
        for i, metric in enumerate(groups[setting]):
            group = SETTINGS[setting] if i == 0 else ""
            table.add_column(f"{group}\n{LABELS[metric]}{arrow(metric)}", justify="right", no_wrap=True)
    for model in models:
        cells = [model]
        for setting in settings:
            summary = pooled.get((model, setting))
            for metric in groups[setting]:
                cells.append(fmt(metric, summary[metric], summary["psnr_capped"]) if summary else "-")
        table.add_row(*cells)
    return table


def notes(summaries: Sequence[dict[str, Any]], shown: Iterable[str] = METRICS) -> list[str]:
    """Footnotes shared by the tables: units, unavailable metrics among those ``shown``,
    faceless frames, PSNR cap."""
    lines = [FOOTNOTE]
    unavailable: dict[str, str] = {}
    for summary in summaries:
        unavailable.update(summary.get("unavailable", {}))
    lines += [f"{LABELS[m]} not computed: {why}" for m, why in sorted(unavailable.items()) if m in set(shown)]
    faceless = sum(s["frames_without_face"] for s in summaries)
    if faceless:
        lines.append(f"{faceless} frame(s) without a detectable face: their CSIM/AED/APD are left out of the means")
    if any(s["psnr_capped"] for s in summaries):
        lines.append("* some frames are identical to their reference: their PSNR counts as 100 dB (the cap)")
    return lines


def write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Records as CSV; columns are the union of keys in first-seen order, '' for None."""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(k for k, v in record.items() if not isinstance(v, dict)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({k: "" if record.get(k) is None else record.get(k) for k in columns})


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def plot(path: Path, series: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> None:
    """PNG with one panel per measured metric (and yaw/pitch/roll), one line per series."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = [m for m in METRICS if any(r.get(m) is not None for _, rows in series for r in rows)]
    if any(r.get("yaw") is not None for _, rows in series for r in rows):
        panels.append("pose")
    panels = panels or ["psnr"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 * len(panels)), sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        for k, (label, rows) in enumerate(series):
            frames = [r["frame"] for r in rows]
            color = f"C{k % 10}"  # one colour per series in every panel
            if panel == "pose":
                # Line style tells the axis; the reference's pose is drawn in grey when
                # there is a single series, so the two can be compared.
                sources = [(label, "", color)] + ([("reference", "ref_", "grey")] if len(series) == 1 else [])
                for name, prefix, line_color in sources:
                    for axis, style in (("yaw", "-"), ("pitch", "--"), ("roll", ":")):
                        values = [_nan(r.get(prefix + axis)) for r in rows]
                        ax.plot(frames, values, style, color=line_color, label=f"{name} {axis}")
                ax.set_ylabel("head pose (deg)")
                ax.legend(fontsize="x-small", ncol=2, loc="best")
            else:
                ax.plot(frames, [_nan(r.get(panel)) for r in rows], color=color, label=label)
                ax.set_ylabel(f"{LABELS[panel]} {arrow(panel)}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="small", loc="best")
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
