"""The report inside optuna-dashboard: its figures (stable ids, so a refresh replaces them)
and its Markdown as the study's note; refreshed by ``report`` and, every few trials, by a
callback of ``study optimize``."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_mix.report.data import StudyReport, build_report
from optuna_mix.report.figures import figures
from optuna_mix.report.render import markdown
from optuna_mix.scale import PresetScales

REFRESH_EVERY = 5  # trials between refreshes during optimize (the cost: docs/benchmarks/report.md)
# at most this share of a worker's time goes to refreshes: with millisecond trials (analytic
# surfaces) a refresh (about 0.4 s) waits until the trials since the last one took 20x as long
MAX_TIME_SHARE = 0.05
# what the first refresh is taken to cost before one was measured (imports of plotly and
# BoTorch, a GP fit): a worker refreshes first after 40 s of trials (docs/benchmarks/report.md)
ASSUMED_FIRST_COST = 2.0


NOTE_HASH_ATTR = "optuna_mix:note_sha256"  # study system attr: the note optuna-mix last wrote
DASHBOARD_NOTE_PREFIX = "dashboard:note_str:"  # how optuna-dashboard 0.21 keeps a study's note


def current_note(storage: optuna.storages.BaseStorage, study_id: int) -> str:
    """The study's note as optuna-dashboard keeps it (chunks of one string), or ''."""
    attrs = storage.get_study_system_attrs(study_id)
    chunks = []
    while (chunk := attrs.get(f"{DASHBOARD_NOTE_PREFIX}{len(chunks)}")) is not None:
        chunks.append(chunk)
    return "".join(chunks)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def publish(
    study: optuna.Study, storage: optuna.storages.BaseStorage, report: StudyReport
) -> tuple[list[str], bool]:
    """Save every figure of ``report`` into ``study``, and its Markdown as the study's note.

    Returns the figure ids saved and whether the note was written. A note that someone
    wrote or edited in the dashboard is kept: the report replaces only a note that is empty
    or still the one optuna-mix wrote last.
    """
    from optuna_dashboard import save_note, save_plotly_graph_object

    saved = []
    for graph_id, figure in figures(report).items():
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
        saved.append(graph_id)
    study_id = storage.get_study_id_from_name(study.study_name)
    note = current_note(storage, study_id)
    ours = storage.get_study_system_attrs(study_id).get(NOTE_HASH_ATTR)
    if note and _sha(note) != ours:
        return saved, False
    text = markdown(report)
    save_note(study, text)
    storage.set_study_system_attr(study_id, NOTE_HASH_ATTR, _sha(text))
    return saved, True


class DashboardRefresh:
    """An Optuna callback: rebuild the report and publish it every ``every`` complete trials.

    A refresh is put off while the time since the last one is under its cost divided by
    ``max_share``, so that it never takes more than that share of the worker's time (GPT
    trials of seconds to hours: every ``every`` trials; millisecond surface trials: less
    often). ``seconds`` adds up the time it took, ``refreshes`` and ``put_off`` count.
    A failure to publish (a busy database) is logged and skipped: it never fails the study.
    """

    def __init__(
        self,
        domains: Sequence[str],
        storage: optuna.storages.BaseStorage,
        *,
        sampler: str = "",
        criterion: str = "mean",
        every: int = REFRESH_EVERY,
        max_share: float = MAX_TIME_SHARE,
        scales: PresetScales | None = None,
    ) -> None:
        self.domains, self.storage = list(domains), storage
        self.scales = scales
        self.sampler, self.criterion, self.every = sampler, criterion, every
        self.max_share = max_share
        self.seconds = 0.0
        self.refreshes = self.put_off = 0
        self._last_cost = ASSUMED_FIRST_COST
        self._last_end = time.perf_counter()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.COMPLETE:
            return
        n = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if n % self.every:
            return
        self.refresh_if_due(study)

    def refresh_if_due(self, study: optuna.Study) -> bool:
        """Refresh unless it would take more than ``max_share`` of the time; whether it did."""
        if time.perf_counter() - self._last_end < self._last_cost / self.max_share:
            self.put_off += 1
            return False
        self.refresh(study)
        return True

    def refresh(self, study: optuna.Study) -> None:
        """Rebuild and publish now."""
        started = time.perf_counter()
        try:
            report = build_report(study, self.domains, storage=self.storage,
                                  sampler=self.sampler, criterion=self.criterion,
                                  scales=self.scales)
            publish(study, self.storage, report)
        except Exception as e:  # the study goes on; the next refresh tries again
            optuna.logging.get_logger(__name__).warning(f"dashboard refresh skipped: {e}")
        self._last_end = time.perf_counter()
        self._last_cost = self._last_end - started
        self.seconds += self._last_cost
        self.refreshes += 1
