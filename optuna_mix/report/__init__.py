"""What a study found: its good trials, their weight clusters, the references, the GP's
recommendation and domain utility; as text, Markdown, JSON, figures and in optuna-dashboard.

| module          | its job                                                        |
|-----------------|----------------------------------------------------------------|
| ``data``        | the report as numbers (``build_report``, ``StudyReport``)       |
| ``references``  | what the best mixture is compared with                          |
| ``figures``     | the plotly figures, titled with what they show                  |
| ``render``      | text, Markdown and JSON                                        |
| ``dashboard``   | optuna-dashboard: figures and note, the refresh callback        |
| ``export``      | ``report --out DIR``: report.md, report.json, HTML and PNG      |
"""

from optuna_mix.report.dashboard import DashboardRefresh, publish
from optuna_mix.report.data import StudyReport, build_report
from optuna_mix.report.export import export
from optuna_mix.report.figures import figures
from optuna_mix.report.render import markdown, print_text, to_json

__all__ = ["DashboardRefresh", "StudyReport", "build_report", "export", "figures", "markdown",
           "print_text", "publish", "to_json"]
