"""Where SIGINT/SIGTERM may raise (``optuna_mix.signals``): never where a trial is in flight."""

from __future__ import annotations

import os
import signal

import optuna
import pytest
from optuna.trial import TrialState

from optuna_mix.signals import Interrupted, interruptible, stop_on_signals


def test_a_signal_inside_an_interruptible_block_raises_at_once():
    with pytest.raises(Interrupted) as raised:
        with stop_on_signals():
            with interruptible():
                os.kill(os.getpid(), signal.SIGTERM)
                signal.pthread_kill  # any bytecode: the handler runs here
                pytest.fail("not interrupted")
    assert raised.value.signal_name == "SIGTERM" and raised.value.exit_code == 143


def test_a_signal_elsewhere_is_held_until_the_next_interruptible_block():
    reached = []
    with pytest.raises(Interrupted) as raised:
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGINT)  # as if during a sampler's proposal
            reached.append("after the signal")
            with interruptible():
                reached.append("inside")  # never: the held signal raises on entry
    assert reached == ["after the signal"] and raised.value.exit_code == 130


def test_a_held_signal_raises_when_the_run_ends():
    with pytest.raises(Interrupted):
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_only_the_first_signal_raises():
    with pytest.raises(Interrupted):
        with stop_on_signals():
            with interruptible():
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                    signal.pthread_kill
                except Interrupted:
                    os.kill(os.getpid(), signal.SIGTERM)  # the scheduler repeats itself
                    recorded = "the FAIL is written undisturbed"
                    raise
    assert recorded


def test_a_signal_during_a_proposal_stops_the_study_with_no_trial_left_running():
    class SignalWhileProposing(optuna.samplers.RandomSampler):
        def before_trial(self, study, trial):  # inside study.ask(), the trial already RUNNING
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pthread_kill

    study = optuna.create_study(sampler=SignalWhileProposing(seed=0))

    def objective(trial: optuna.Trial) -> float:
        with interruptible():
            return trial.suggest_float("x", 0, 1)

    with pytest.raises(Interrupted):
        with stop_on_signals(study):
            study.optimize(objective, n_trials=5)
    assert [t.state for t in study.trials] == [TrialState.FAIL]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_signal_inside_a_storage_call_raises_once_the_write_is_done(tmp_path, monkeypatch):
    from optuna.storages._rdb import storage as rdb

    from optuna_mix.storage import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    opened = rdb._create_scoped_session

    def signalled_session(*args, **kwargs):  # the signal lands mid-way through the write
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pthread_kill
        return opened(*args, **kwargs)

    monkeypatch.setattr(rdb, "_create_scoped_session", signalled_session)
    with pytest.raises(Interrupted):
        with stop_on_signals(study):
            with interruptible():
                storage.set_trial_user_attr(trial._trial_id, "written", True)
                pytest.fail("the signal was lost")
    monkeypatch.setattr(rdb, "_create_scoped_session", opened)
    assert study.trials[0].user_attrs == {"written": True}
    study.tell(trial, state=TrialState.FAIL)  # the storage is still usable
    assert study.trials[0].state == TrialState.FAIL
