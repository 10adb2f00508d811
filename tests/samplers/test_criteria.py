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


# -- criteria bound to parameters (CriterionSpec) ----------------------------------------------
from optuna_mix.samplers.criteria import CriterionSpec  # noqa: E402

OUTPUTS = ["a", "b", "c", "d"]
LOSSES = np.array([3.0, 1.0, 4.0, 2.0])  # per output a, b, c, d


@pytest.mark.parametrize(
    "spec, want",
    [
        (CriterionSpec("mean"), 2.5),
        (CriterionSpec("max"), 4.0),
        (CriterionSpec("median"), 2.5),
        # weighted: sum a_i L_i / sum a_i, 1 for an output not named
        (CriterionSpec("weighted", weights=(("c", 3.0),)), (3 + 1 + 12 + 2) / 6),
        (CriterionSpec("weighted", weights=(("a", 0.0), ("b", 0.0), ("d", 0.0))), 4.0),
        # cvar: the mean of the worst ceil(q m) outputs
        (CriterionSpec("cvar", fraction=0.25), 4.0),
        (CriterionSpec("cvar", fraction=0.5), 3.5),
        (CriterionSpec("cvar", fraction=0.6), (4 + 3 + 2) / 3),
        (CriterionSpec("cvar", fraction=1.0), 2.5),
        (CriterionSpec("cvar"), 4.0),  # the default 0.25
        # excess: max_i (L_i - R_i)
        (CriterionSpec("excess", reference=(("a", 2.0), ("b", 1.5), ("c", 3.5), ("d", 0.5))),
         1.5),
        (CriterionSpec("excess", reference=(("d", 2.0), ("c", 4.0), ("b", 1.0), ("a", 3.0))),
         0.0),  # the reference's own losses: 0, whatever the order it is given in
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_each_criterion_gives_what_its_definition_says(spec, want):
    torch = pytest.importorskip("torch")
    criterion = spec.bind(OUTPUTS)
    assert criterion(LOSSES) == pytest.approx(want)
    batch = np.random.default_rng(0).random((3, 6, len(OUTPUTS)))
    np.testing.assert_allclose(criterion.torch(torch.as_tensor(batch)).numpy(), criterion(batch),
                               rtol=0, atol=1e-12)
    assert CriterionSpec.from_json(spec.to_json()) == spec


def test_a_bound_criterion_follows_the_order_of_its_outputs():
    spec = CriterionSpec("weighted", weights=(("a", 3.0),))
    assert spec.bind(["a", "b"])(np.array([1.0, 5.0])) == pytest.approx(2.0)
    assert spec.bind(["b", "a"])(np.array([5.0, 1.0])) == pytest.approx(2.0)
    assert spec.bind(["a", "b"]).linear == pytest.approx((0.75, 0.25))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: CriterionSpec("avg"), "unknown criterion 'avg'"),
        (lambda: CriterionSpec("mean", weights=(("a", 1.0),)), "for the weighted criterion"),
        (lambda: CriterionSpec("weighted", weights=(("a", -1.0),)), "finite and >= 0"),
        (lambda: CriterionSpec("cvar", fraction=1.5), "must be in (0, 1]"),
        (lambda: CriterionSpec("max", fraction=0.5), "for the cvar criterion"),
        (lambda: CriterionSpec("mean", reference=(("a", 1.0),)), "for the excess criterion"),
        (lambda: CriterionSpec("weighted", weights=(("z", 1.0),)).bind(OUTPUTS),
         "weights for z: not among the validation sets"),
        (lambda: CriterionSpec("excess").bind(OUTPUTS), "has not been trained yet"),
        (lambda: CriterionSpec("excess", reference=(("a", 1.0),)).bind(OUTPUTS),
         "has no loss for b, c, d"),
    ],
)
def test_a_criterion_that_cannot_be_built_says_why(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()
