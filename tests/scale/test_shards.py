"""The pieces of a sharded run without Ray: shard ranges, the manifest's refusals, and shards written by the actor
class in this process, merged back into the single-process archive (string ids of different widths included)."""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import onnxism
from onnxism.scale import iter_shards, merge_shards, read_shards
from onnxism.scale.actors import ShardScorer
from onnxism.scale.shards import describe_options, open_manifest, shard_ranges
from onnxism.sequences import read_sequences

from cli_helpers import MODEL, SEQS


@given(st.integers(1, 5000), st.integers(1, 700))
def test_shard_ranges_cover_the_sequences_once_in_order(count, size):
    ranges = shard_ranges(count, size)
    assert ranges[0][0] == 0 and ranges[-1][1] == count
    assert all(stop == start for (_, stop), (start, _) in zip(ranges, ranges[1:]))
    assert all(0 < stop - start <= size for start, stop in ranges)
    assert len(ranges) == -(-count // size)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "10"])
def test_a_bad_shard_size_is_refused(size):
    with pytest.raises(onnxism.InputError, match="shard_size must be a positive integer"):
        shard_ranges(10, size)


def test_options_are_described_exactly():
    weights = np.arange(6, dtype=np.float32).reshape(2, 3)
    described = describe_options({"targets": weights, "positions": (0, 5), "outputs": None})
    assert described["positions"] == [0, 5] and described["outputs"] is None
    changed = weights.copy()
    changed[1, 2] = np.nextafter(changed[1, 2], 10)
    assert describe_options({"targets": changed})["targets"] != described["targets"]


def test_a_folder_of_another_run_is_refused_and_force_starts_again(tmp_path):
    folder = tmp_path / "run"
    run = {"kind": "ism", "options": {"method": "fast"}, "shards": {"count": 8, "size": 4}}
    manifest = open_manifest(folder, run)
    open(manifest.path(0), "wb").close()
    assert manifest.pending() == [1]
    assert open_manifest(folder, run).pending() == [1]
    other = dict(run, options={"method": "naive"})
    with pytest.raises(onnxism.InputError, match="holds the shards of another run .*options.*--force"):
        open_manifest(folder, other)
    assert open_manifest(folder, other, force=True).pending() == [0, 1]
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("mine")
    with pytest.raises(onnxism.InputError, match="is not a sharded run's"):
        open_manifest(tmp_path / "stray", run)


def test_shards_written_by_the_actor_merge_into_the_single_process_archive(tmp_path):
    """FASTA input, ids of different widths in different shards: the merged archive equals the single-process one,
    dtypes included, whether merged in memory, streamed or written."""
    onehot = np.load(SEQS)
    fasta = tmp_path / "seqs.fa"
    with open(fasta, "w") as handle:
        for index, row in enumerate(onehot):
            name = "s" if index < 4 else f"sequence_{index}"
            handle.write(f">{name}\n{''.join('ACGT'[base] for base in row.argmax(axis=1))}\n")
    sequences = read_sequences(str(fasta))
    single = onnxism.ism_to_npz(MODEL, sequences, tmp_path / "single.npz")
    manifest = open_manifest(tmp_path / "run", {"shards": {"count": len(sequences), "size": 3}})
    scorer = ShardScorer(MODEL, {}, "ism", {"method": "fast"})
    for index, (start, stop) in enumerate(manifest.shards):
        onehot_rows = sequences.onehot(start, stop).astype(np.uint8)
        report = scorer.score(manifest.path(index), onehot_rows, sequences.ids[start:stop], {}, None)
        manifest.complete(index, report)
    assert [(start, stop) for start, stop, _ in iter_shards(manifest.folder)] == [(0, 3), (3, 6), (6, 8)]
    merged = merge_shards(manifest.folder, tmp_path / "merged.npz")
    with np.load(single) as wanted, np.load(merged) as got:
        in_memory = read_shards(manifest.folder)
        assert list(got.files) == list(wanted.files) == list(in_memory)
        for key in wanted.files:
            for value in (got[key], in_memory[key]):
                assert value.dtype == wanted[key].dtype and np.array_equal(value, wanted[key]), key
    os.remove(manifest.path(1))
    with pytest.raises(onnxism.InputError, match=r"1 of 3 shards are missing \(1\); run the same command again"):
        merge_shards(manifest.folder, tmp_path / "again.npz")
    assert not (tmp_path / "again.npz").exists()
