import pytest

from hasten.core.algorithm import Algorithm
from hasten.core.composition import check_composition
from hasten.errors import ConflictError


def algorithm(label, touches=(), requires=(), removes=(), conflicts=None):
    cls = type(
        label,
        (Algorithm,),
        {
            "name": label,
            "touches": frozenset(touches),
            "requires": frozenset(requires),
            "removes": frozenset(removes),
            "conflicts": conflicts or {},
        },
    )
    return cls()


def test_compatible_methods_pass():
    check_composition([algorithm("a", touches={"batch"}), algorithm("b", touches={"loss"})])


def test_duplicate_method():
    with pytest.raises(ConflictError, match="'a' is given twice"):
        check_composition([algorithm("a"), algorithm("a")])


@pytest.mark.parametrize("order", [0, 1])
def test_declared_conflict_is_caught_in_either_order(order):
    pair = [algorithm("a", conflicts={"b": "they fight"}), algorithm("b")]
    with pytest.raises(ConflictError) as info:
        check_composition(pair if order == 0 else pair[::-1])
    assert "'a'" in str(info.value) and "'b'" in str(info.value) and "they fight" in str(info.value)


def test_two_methods_rewriting_targets_conflict():
    with pytest.raises(ConflictError, match="both rewrite the targets"):
        check_composition([algorithm("mix1", touches={"targets"}), algorithm("mix2", touches={"targets", "batch"})])


def test_required_capability_removed_by_another():
    with pytest.raises(ConflictError, match="'needs' needs fixed_input_shape, which 'resizer' takes away"):
        check_composition(
            [algorithm("needs", requires={"fixed_input_shape"}), algorithm("resizer", removes={"fixed_input_shape"})]
        )
