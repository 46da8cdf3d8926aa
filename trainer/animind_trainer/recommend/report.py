"""eval_report.html: one self-contained page (plots are base64 PNGs drawn with matplotlib's Agg
canvas; no scripts, styles or fonts from the network) from eval_metrics.json's content and,
when given, the training run's summary."""

from __future__ import annotations

import base64
import html
import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

LEVELS = [f"L{level}" for level in range(1, 9)]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; } caption { text-align: left; color: #555; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; } td.best { font-weight: bold; background: #eef6ee; }
img { max-width: 100%; } .note { color: #555; } .headline { font-size: 1.15em; }
"""


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _number(value, percent=False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def _recall_plot(metrics: dict) -> str:
    ks = metrics["k_values"]
    fig = Figure(figsize=(10, 3.8))
    for axis, key, title in (
        (fig.add_subplot(1, 2, 1), "recall", "Recall@K"),
        (fig.add_subplot(1, 2, 2), "ndcg", "NDCG@K"),
    ):
        for name, model in metrics["models"].items():
            axis.plot(ks, [model[key][str(k)] for k in ks], marker="o", label=model.get("label", name))
        axis.set_xlabel("K")
        axis.set_title(title)
        axis.set_xticks(ks)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    fig.axes[0].legend()
    return _png(fig)


def _level_plot(metrics: dict) -> str:
    models = metrics["models"]
    fig = Figure(figsize=(10, 3.6))
    axis = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(models), 1)
    for i, (name, model) in enumerate(models.items()):
        xs = [level + (i - (len(models) - 1) / 2) * width for level in range(len(LEVELS))]
        axis.bar(xs, [model["level_accuracy"][lv] for lv in LEVELS], width, label=model.get("label", name))
    axis.set_xticks(range(len(LEVELS)), LEVELS)
    axis.set_ylim(0, 1)
    axis.set_ylabel("top-1 prefix accuracy")
    axis.set_title("Per-level accuracy: the top-1 ID's first L tokens equal the target's")
    axis.legend()
    axis.grid(alpha=0.3, axis="y")
    return _png(fig)


def _invalid_plot(rate: float) -> str:
    fig = Figure(figsize=(8, 1.1))
    axis = fig.add_subplot(1, 1, 1)
    axis.barh([0], [1 - rate], color="#4c9a55", label="valid ID")
    axis.barh([0], [rate], left=[1 - rate], color="#c84b4b", label="not an ID")
    axis.set_xlim(0, 1)
    axis.set_yticks([])
    axis.set_title("Unconstrained greedy decoding: share of users")
    axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(fig)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _points(records, key: str, offset: int) -> list[tuple[float, float]]:
    """(global step, value) of a phase's eval records; malformed ones are skipped."""
    good = [r for r in records or [] if isinstance(r, dict) and _is_number(r.get("step")) and _is_number(r.get(key))]
    return [(offset + r["step"], r[key]) for r in good]


def _training_plot(summary: dict) -> str | None:
    phases = [p for p in summary.get("phases") or [] if isinstance(p, dict)]
    losses, evals, english, bounds = [], [], [], []
    offset = 0
    for phase in phases:
        steps = phase.get("step_losses") or []
        losses += [(offset + i + 1, v) for i, v in enumerate(steps) if _is_number(v)]
        evals += _points(phase.get("evals"), "eval_loss", offset)
        english += _points(phase.get("english_evals"), "perplexity", offset)
        offset += len(steps)
        bounds.append((offset, phase.get("name", "")))
    panels = [
        (losses, "training loss", "loss"),
        (evals, "held-out eval loss", "loss"),
        (english, "English perplexity", "perplexity"),
    ]
    panels = [p for p in panels if p[0]]
    if not panels:
        return None
    fig = Figure(figsize=(4.2 * len(panels), 3.4))
    for i, (points, title, unit) in enumerate(panels, 1):
        axis = fig.add_subplot(1, len(panels), i)
        axis.plot([x for x, _ in points], [y for _, y in points], marker="o" if len(points) < 40 else None)
        for end, _ in bounds[:-1]:
            axis.axvline(end, color="#999", linestyle="--", linewidth=0.8)
        axis.set_title(title)
        axis.set_xlabel("optimizer step (phases in order)")
        axis.set_ylabel(unit)
        axis.grid(alpha=0.3)
    return _png(fig)


def _table(rows: list[tuple[str, list]], columns: list[str], caption: str = "") -> str:
    """rows: (label, values); every metric is higher-is-better and the best of each row is bold."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = []
    for label, values in rows:
        numbers = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
        best = max(numbers) if len(numbers) > 1 else None
        cells = "".join(
            f'<td class="best">{_number(v)}</td>' if best is not None and v == best else f"<td>{_number(v)}</td>"
            for v in values
        )
        body.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _metrics_table(metrics: dict) -> str:
    models = metrics["models"]
    names = list(models)
    rows = [(f"Recall@{k}", [models[n]["recall"][str(k)] for n in names]) for k in metrics["k_values"]]
    rows += [(f"NDCG@{k}", [models[n]["ndcg"][str(k)] for n in names]) for k in metrics["k_values"]]
    rows.append((f"MRR (top {metrics['top_k']})", [models[n]["mrr"] for n in names]))
    rows += [(f"{lv} accuracy", [models[n]["level_accuracy"][lv] for n in names]) for lv in LEVELS]
    table = _table(rows, [models[n].get("label", n) for n in names])
    speed = "".join(
        f"<td>{models[n]['timing']['users_per_s']:.1f}</td>" if models[n].get("timing") else "<td>-</td>" for n in names
    )
    extra = f"<tr><td>users/s (ranking)</td>{speed}</tr>"
    if any(models[n].get("invalid_id_rate") is not None for n in names):
        rates = "".join(f"<td>{_number(models[n].get('invalid_id_rate'), percent=True)}</td>" for n in names)
        extra = f"<tr><td>invalid-ID rate (greedy, lower is better)</td>{rates}</tr>{extra}"
    return table.replace("</tbody>", f"{extra}</tbody>")


def _breakdown_tables(metrics: dict) -> str:
    ks = metrics["k_values"]
    k = 10 if 10 in ks else ks[-1]
    models = metrics["models"]
    parts = []
    for key, title in (("history_length", "history length (watches)"), ("sentiment", "the target's sentiment")):
        groups: list[str] = []
        for model in models.values():
            groups += [g for g in model["breakdowns"][key] if g not in groups]
        rows = []
        for group in groups:
            cells = [models[n]["breakdowns"][key].get(group) for n in models]
            users = next((c["users"] for c in cells if c), 0)
            rows.append((f"{group} ({users} users)", [c["recall"][str(k)] if c else None for c in cells]))
        parts.append(_table(rows, [m.get("label", n) for n, m in models.items()], f"Recall@{k} by {title}"))
    return "".join(parts)


def _explanations(metrics: dict) -> str:
    models = metrics["models"]
    excluded = (
        "Each user's history is <b>excluded</b> from every ranking (the model's beams and the baselines' lists "
        "alike): only anime the user has not watched can be recommended."
        if metrics["exclude_history"]
        else "History items are <b>not excluded</b>: a ranking may recommend anime the user already watched."
    )
    llm = ""
    if "llm" in models:
        llm = f"""
<li><b>Invalid-ID rate</b>: the model decoded greedily with no constraint; the share of users whose 8 tokens
are no anime's semantic ID. The model's rankings themselves come from beam search (beam {metrics.get("beam_size")})
constrained by a trie of the valid IDs, so every recommendation is a real anime, scored by the model's
log-probability of its ID.</li>"""
    sasrec = ""
    if "sasrec" in models:
        s = metrics.get("sasrec") or {}
        sasrec = f"""
<li><b>SASRec</b>: a self-attentive sequential model (Kang &amp; McAuley 2018) trained on next-item prediction
with one sampled negative per position (hidden {s.get("hidden")}, {s.get("blocks")} blocks, {s.get("heads")}
head(s), last {s.get("max_len")} items, dropout {s.get("dropout")}, lr {s.get("lr")}, {s.get("epochs")} epochs).</li>"""
    return f"""
<p>{excluded} Each held-out user has one target: the last watch of their history, hidden from the
prompt. Every model ranks the whole catalog of semantic IDs; lists are cut at top {metrics["top_k"]}.</p>
<ul>
<li><b>Recall@K</b> (hit rate): the share of users whose target is among the first K.</li>
<li><b>NDCG@K</b>: 1/log2(rank+1) for a target at rank ≤ K, else 0, averaged over users.</li>
<li><b>MRR</b>: 1/rank of the target in the returned top-{metrics["top_k"]} list (0 when absent).</li>
<li><b>Per-level accuracy L1…L8</b>: the top-1 recommendation's first L semantic-ID tokens equal the target's.</li>{llm}
<li><b>Ties</b>: when a baseline gives several anime the target's score, the metrics are their expected value
over a random order of the tied anime.</li>
</ul>
<p>Baselines, learned from the training users' histories only:</p>
<ul>
<li><b>Most popular</b>: anime ranked by how many training users watched them; the same list for everyone.</li>
<li><b>Item-kNN</b>: cosine similarity of anime over co-occurrence in training histories,
sim(i,j) = c<sub>ij</sub>/√(n<sub>i</sub>n<sub>j</sub>); an anime scores the sum of its similarities to the
history.</li>{sasrec}
</ul>"""


def render(metrics: dict, train_summary: dict | None) -> str:
    models = metrics["models"]
    sections = [
        f"<h1>Recommendation evaluation</h1><p class='headline'>{metrics['users']} held-out users · "
        f"{len(models)} models · top {metrics['top_k']}</p>",
        "<h2>Metrics</h2>",
        _metrics_table(metrics),
        "<h2>Recall@K and NDCG@K</h2>",
        _recall_plot(metrics),
        "<h2>Per-level accuracy</h2>",
        _level_plot(metrics),
    ]
    llm = models.get("llm")
    if llm and llm.get("invalid_id_rate") is not None:
        rate = llm["invalid_id_rate"]
        sections += [
            "<h2>Invalid-ID rate</h2>",
            f"<p class='headline'>Unconstrained greedy decoding produced no valid semantic ID for "
            f"<b>{_number(rate, True)}</b> of users.</p>",
            _invalid_plot(rate),
        ]
    sections += ["<h2>Breakdowns</h2>", _breakdown_tables(metrics)]
    if train_summary is not None:
        plot = _training_plot(train_summary)
        sections += ["<h2>Training</h2>", plot or "<p class='note'>The training summary holds no losses.</p>"]
    sections += ["<h2>What the numbers mean</h2>", _explanations(metrics)]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>animind evaluation</title>'
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )
