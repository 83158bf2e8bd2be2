import numpy as np
import pytest

from virnucpro_runtime import packing
from virnucpro_runtime.tokenizers import TokenizedSet


@pytest.fixture
def lengths():
    return np.random.default_rng(3).integers(5, 170, size=500)


def test_packed_plan_covers_every_row_once_within_budget(lengths):
    plan = packing.plan_packed(lengths, token_budget=1000)
    rows = np.concatenate(plan)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert all(lengths[batch].sum() <= 1000 for batch in plan)
    # greedy: a batch only ends when the next row would not fit
    assert all(lengths[a].sum() + lengths[b[0]] > 1000 for a, b in zip(plan, plan[1:]))


def test_plans_are_length_sorted_longest_first_and_stable(lengths):
    order = np.concatenate(packing.plan_packed(lengths, 700))
    assert np.all(np.diff(lengths[order]) <= 0)
    tied = [r for r in order if lengths[r] == lengths[order[0]]]
    assert tied == sorted(tied)


def test_padded_plan_bounds_rows_times_longest(lengths):
    plan = packing.plan_padded(lengths, token_budget=2048)
    assert sorted(np.concatenate(plan).tolist()) == list(range(len(lengths)))
    assert all(len(b) * lengths[b].max() <= 2048 for b in plan)


def test_a_sequence_longer_than_the_budget_gets_its_own_batch():
    lengths = np.array([10, 5000, 10])
    assert [b.tolist() for b in packing.plan_packed(lengths, 100)] == [[1], [0, 2]]
    assert [b.tolist() for b in packing.plan_padded(lengths, 100)] == [[1], [0, 2]]


def test_assembled_batches_carry_exactly_the_planned_tokens():
    sequences = [np.arange(n) + 100 * i for i, n in enumerate([3, 7, 1, 4])]
    tokens = TokenizedSet.from_lists(sequences)
    rows = np.array([1, 3, 0])
    packed = packing.assemble_packed(tokens, rows, pin=False)
    assert packed.cu_seqlens.tolist() == [0, 7, 11, 14] and packed.max_seqlen == 7
    assert packed.tokens.tolist() == np.concatenate([sequences[1], sequences[3], sequences[0]]).tolist()
    padded = packing.assemble_padded(tokens, rows, pad_id=-1, pin=False)
    assert padded.input_ids.shape == (3, 7) and padded.lengths.tolist() == [7, 4, 3]
    assert padded.input_ids[1].tolist() == sequences[3].tolist() + [-1, -1, -1]
