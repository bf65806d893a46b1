"""Hand-drawn SVG charts, self-contained in the reports (no script, no library).

Why not a plotting library: matplotlib would bring numpy and tens of MB into a toolkit that
is otherwise the standard library, and its SVGs draw every glyph as a path by default
(svg.fonttype "path"), so the committed reports would grow; these few primitives (axes,
ticks, polylines) are all the reports need.

Ticks are "nice" numbers: 1, 2, 2.5 or 5 times a power of ten, so that an axis reads
0 / 0.5 / 1 / 1.5 rather than 0 / 0.179 / 0.358.
"""

import math

COLORS = ["#c0392b", "#2471a3", "#1e8449", "#7d3c98", "#d68910", "#17a589", "#5d6d7e", "#a04000"]


def nice_step(span, count=4):
    """The smallest nice step (1, 2, 2.5, 5 × 10^k) that covers span in at most count steps."""
    if span <= 0:
        return 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw * (1 - 1e-9):
            return m * power
    return 10 * power


def nice_ticks(v_max, count=4):
    """Ticks from 0 up to the first nice multiple at or above v_max (the axis' top)."""
    step = nice_step(v_max, count)
    n = max(1, math.ceil(v_max / step - 1e-9))
    return [round(i * step, 10) for i in range(n + 1)]


def fmt_tick(v):
    return f"{v:,.0f}".replace(",", " ") if v >= 1000 else f"{v:g}"


class DualAxes:
    """A frame shared by the saturation and timeline plots: x to the right, p99 on a log
    scale on the left (red, solid), a linear quantity on the right (blue, dashed)."""

    def __init__(self, title, x_max, p99s, right_max, x_label, right_label, w=760, h=300, pad=60, log_min=0.1):
        self.w, self.h, self.pad = w, h, pad
        self.x_max, self.log_min = x_max, log_min
        right_ticks = nice_ticks(max(right_max, 1))
        self.right_max = right_ticks[-1]
        self.top = 10 ** max(1, math.ceil(math.log10(max(max(p99s or [1]), 1))))
        self.out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#c0392b"/>',
            f'<line x1="{w - pad}" y1="{pad}" x2="{w - pad}" y2="{h - pad}" stroke="#2471a3"/>',
            f'<text x="{w / 2}" y="{h - 20}" text-anchor="middle">{x_label}</text>',
            f'<text x="16" y="{h / 2}" fill="#c0392b" transform="rotate(-90 16 {h / 2})" text-anchor="middle">p99 ms (log) — solid</text>',
            f'<text x="{w - 12}" y="{h / 2}" fill="#2471a3" transform="rotate(90 {w - 12} {h / 2})" text-anchor="middle">{right_label} — dashed</text>',
        ]
        d = log_min
        while d <= self.top:
            self.out.append(f'<text x="{pad - 6}" y="{self.y1(d) + 4}" text-anchor="end" fill="#c0392b">{d:g}</text>')
            self.out.append(f'<line x1="{pad}" y1="{self.y1(d)}" x2="{w - pad}" y2="{self.y1(d)}" stroke="#eee"/>')
            d *= 10
        for v in right_ticks:
            self.out.append(f'<text x="{w - pad + 6}" y="{self.y2(v) + 4}" fill="#2471a3">{fmt_tick(v)}</text>')

    def x(self, v):
        return self.pad + (self.w - 2 * self.pad) * v / self.x_max

    def y1(self, v):
        span = math.log10(self.top / self.log_min)
        return self.h - self.pad - (self.h - 2 * self.pad) * math.log10(max(v, self.log_min) / self.log_min) / span

    def y2(self, v):
        return self.h - self.pad - (self.h - 2 * self.pad) * v / self.right_max

    def line(self, points, color, dashed=False):
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        self.out.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} points="'
            + " ".join(f"{x},{y}" for x, y in points)
            + '"/>'
        )

    def svg(self):
        return "\n".join(self.out + ["</svg>"])


def timeline_svg(timeline, title):
    """Requests per second (dashed, right axis) and p99 per second (solid, left, log) over time."""
    if not timeline:
        return ""
    t_max = max(r["t"] for r in timeline) + 1
    ax = DualAxes(
        title,
        t_max,
        [r["p99_ms"] or 0 for r in timeline],
        max(r["requests"] for r in timeline),
        "seconds into the load (by scheduled arrival)",
        "requests/s",
    )
    X, h, pad, out = ax.x, ax.h, ax.pad, ax.out
    for t in nice_ticks(t_max - 1, 10):
        if t <= t_max:
            out.append(f'<text x="{X(t)}" y="{h - pad + 16}" text-anchor="middle">{t:g}</text>')
    # The plateau starts halfway through the schedule: mark the phases.
    out.append(
        f'<line x1="{X(t_max / 2)}" y1="{pad}" x2="{X(t_max / 2)}" y2="{h - pad}" stroke="#999" stroke-dasharray="2 2"/>'
    )
    out.append(f'<text x="{X(t_max / 4)}" y="{pad - 6}" text-anchor="middle" fill="#555">ramp</text>')
    out.append(f'<text x="{X(3 * t_max / 4)}" y="{pad - 6}" text-anchor="middle" fill="#555">plateau</text>')
    ax.line([(X(r["t"]), ax.y1(r["p99_ms"] or 0)) for r in timeline], "#c0392b")
    ax.line([(X(r["t"]), ax.y2(r["requests"])) for r in timeline], "#2471a3", dashed=True)
    for r in timeline:
        if r["ko"]:
            out.append(
                f'<circle cx="{X(r["t"])}" cy="{h - pad - 4}" r="3" fill="black"><title>{r["ko"]} KO at {r["t"]} s</title></circle>'
            )
    return ax.svg()


def chart(title, series, y_label, phases, x_max, limits=None, w=820, h=240, pad=56):
    """A multi-line chart: series {name: [(t, v)]}, dashed horizontal `limits` {name: value}
    in the series' colour, phase marks [(t, label)] as vertical lines."""
    limits = limits or {}
    vals = [v for pts in series.values() for _, v in pts if v is not None] + [v for v in limits.values() if v]
    y_ticks = nice_ticks(max(vals + [0]) * 1.05 or 1.0)
    y_max = y_ticks[-1]
    x_max = max(x_max, 1)
    top, bottom = 46, 40
    X = lambda t: pad + (w - 2 * pad) * t / x_max
    Y = lambda v: h - bottom - (h - top - bottom) * v / y_max
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{pad}" y="16" font-size="13" font-weight="bold">{title}</text>',
        f'<line x1="{pad}" y1="{Y(0)}" x2="{w - pad}" y2="{Y(0)}" stroke="black"/>',
        f'<line x1="{pad}" y1="{Y(0)}" x2="{pad}" y2="{Y(y_max)}" stroke="black"/>',
        f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">{y_label}</text>',
    ]
    for v in y_ticks:
        out.append(f'<text x="{pad - 4}" y="{Y(v) + 4}" text-anchor="end">{fmt_tick(v)}</text>')
        out.append(f'<line x1="{pad}" y1="{Y(v)}" x2="{w - pad}" y2="{Y(v)}" stroke="#eee"/>')
    for t in nice_ticks(x_max, 10):
        if t <= x_max:
            out.append(f'<text x="{X(t)}" y="{Y(0) + 14}" text-anchor="middle">{t:g}</text>')
    for t, label in phases:
        if 0 <= t <= x_max:
            out.append(
                f'<line x1="{X(t)}" y1="{Y(0)}" x2="{X(t)}" y2="{Y(y_max)}" stroke="#999" stroke-dasharray="2 2"/>'
            )
            out.append(f'<text x="{X(t) + 3}" y="{Y(y_max) + 11}" fill="#555">{label}</text>')
    lx = pad
    for i, (name, pts) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        pts = [(t, v) for t, v in pts if v is not None]
        if pts:
            out.append(
                f'<polyline fill="none" stroke="{c}" stroke-width="1.4" points="'
                + " ".join(f"{X(t):.1f},{Y(v):.1f}" for t, v in pts)
                + '"/>'
            )
        if limits.get(name):
            out.append(
                f'<line x1="{pad}" y1="{Y(limits[name])}" x2="{w - pad}" y2="{Y(limits[name])}" stroke="{c}" stroke-dasharray="6 3"/>'
            )
        out.append(f'<rect x="{lx}" y="23" width="10" height="10" fill="{c}"/><text x="{lx + 13}" y="32">{name}</text>')
        lx += 22 + 7 * len(name)
    out.append(
        f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle">seconds since the load started'
        + (" · dashed: quota / limit" if limits else "")
        + "</text>"
    )
    return "\n".join(out + ["</svg>"])


def scale_svg(title, series, w=640, h=300, pad=56, log_min=0.5):
    """p99 against SCALE for several profiles: series {name: [(scale, p99_ms, passed)]}, a
    line per profile on a log axis (the tail grows by orders of magnitude at the knee), a
    filled dot where the step passed the SLA and a hollow one where it failed."""
    pts_all = [p for pts in series.values() for p in pts]
    if not pts_all:
        return ""
    x_max = max(s for s, _, _ in pts_all)
    x_ticks = nice_ticks(x_max, 8)
    x_max = x_ticks[-1]
    top = 10 ** max(1, math.ceil(math.log10(max(max(p for _, p, _ in pts_all), 1))))
    t, b = 46, 44
    X = lambda s: pad + (w - 2 * pad) * s / x_max  # noqa: E731
    span = math.log10(top / log_min)
    Y = lambda v: h - b - (h - t - b) * math.log10(max(v, log_min) / log_min) / span  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{pad}" y="16" font-size="13" font-weight="bold">{title}</text>',
        f'<line x1="{pad}" y1="{Y(log_min)}" x2="{w - pad}" y2="{Y(log_min)}" stroke="black"/>',
        f'<line x1="{pad}" y1="{Y(log_min)}" x2="{pad}" y2="{Y(top)}" stroke="black"/>',
        f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">p99 ms (log)</text>',
        f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle">SCALE (× the official rates) · filled: passed the SLA, hollow: failed</text>',
    ]
    d = 1.0
    while d <= top:
        out.append(f'<text x="{pad - 4}" y="{Y(d) + 4}" text-anchor="end">{fmt_tick(d)}</text>')
        out.append(f'<line x1="{pad}" y1="{Y(d)}" x2="{w - pad}" y2="{Y(d)}" stroke="#eee"/>')
        d *= 10
    for s in x_ticks:
        out.append(f'<text x="{X(s)}" y="{Y(log_min) + 14}" text-anchor="middle">{s:g}</text>')
    lx = pad
    for i, (name, pts) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        out.append(
            f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="'
            + " ".join(f"{X(s):.1f},{Y(p):.1f}" for s, p, _ in pts)
            + '"/>'
        )
        for s, p, ok in pts:
            fill = c if ok else "white"
            out.append(
                f'<circle cx="{X(s):.1f}" cy="{Y(p):.1f}" r="3.5" fill="{fill}" stroke="{c}"><title>{name} {s:g}×: p99 {p:g} ms, {"passed" if ok else "failed"}</title></circle>'
            )
        out.append(f'<rect x="{lx}" y="23" width="10" height="10" fill="{c}"/><text x="{lx + 13}" y="32">{name}</text>')
        lx += 22 + 7 * len(name)
    return "\n".join(out + ["</svg>"])
