"""Each criterion's torch form is its numpy form, for the GP's Monte-Carlo objective."""

from __future__ import annotations

import numpy as np
import pytest

from optuna_mix.samplers.criteria import CRITERIA, Criterion, register_criterion


@pytest.mark.parametrize("name", list(CRITERIA))
@pytest.mark.parametrize("k", [4, 5], ids=["even k", "odd k"])  # median: interpolated or not
def test_the_torch_criterion_gives_the_numpy_value(name, k):
    torch = pytest.importorskip("torch")
    losses = np.random.default_rng(k).random((3, 7, k))
    got = CRITERIA[name].torch(torch.as_tensor(losses)).numpy()
    np.testing.assert_allclose(got, CRITERIA[name](losses), rtol=0, atol=1e-12)


def test_a_name_in_use_is_refused():
    with pytest.raises(ValueError, match="exists already"):
        register_criterion(Criterion("mean", "", np.mean, np.mean))
