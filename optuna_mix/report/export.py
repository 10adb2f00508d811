"""``report --out DIR``: the report as Markdown and JSON, every figure as HTML and PNG.

The PNGs come from plotly's kaleido, which drives a Chromium (Debian's ``chromium`` here);
where it cannot, the HTML files are still written and the reason is returned.
"""

from __future__ import annotations

from pathlib import Path

from optuna_mix.report.data import StudyReport
from optuna_mix.report.figures import figures
from optuna_mix.report.render import markdown, to_json

PNG_SIZE = (1100, 650)  # pixels: wide enough for five domains and a legend


def export(report: StudyReport, out_dir: Path) -> tuple[list[Path], str | None]:
    """Write report.md, report.json and the figures; the files and why PNGs are missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.md", out_dir / "report.json"]
    written[0].write_text(markdown(report), encoding="utf-8")
    written[1].write_text(to_json(report) + "\n", encoding="utf-8")
    no_png = None
    for name, figure in figures(report).items():
        html = out_dir / f"{name}.html"
        figure.write_html(html, include_plotlyjs="directory")  # plotly.min.js beside: offline
        written.append(html)
        if no_png is None:
            try:
                png = out_dir / f"{name}.png"
                figure.write_image(png, width=PNG_SIZE[0], height=PNG_SIZE[1])
                written.append(png)
            except Exception as e:  # no kaleido, or no browser for it
                no_png = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return written, no_png
