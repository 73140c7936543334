"""Reads dataset directories with the official TRM loader and prints what it yields.

Exits 1 when any directory is rejected. Used for interoperability checks only; the harness
itself never runs Python.
"""

import argparse
import sys


def check(dataset_dir: str) -> None:
    from puzzle_dataset import PuzzleDataset, PuzzleDatasetConfig

    for split, test_mode in (("train", False), ("test", True)):
        config = PuzzleDatasetConfig(
            seed=0,
            dataset_paths=[dataset_dir],
            global_batch_size=8,
            test_set_mode=test_mode,
            epochs_per_iter=1,
            rank=0,
            num_replicas=1,
        )
        dataset = PuzzleDataset(config, split=split)
        set_name, batch, effective = next(iter(dataset))
        m = dataset.metadata
        shapes = {k: tuple(v.shape) for k, v in batch.items()}
        print(
            f"{dataset_dir} [{split}]: total_groups {m.total_groups}, total_puzzles {m.total_puzzles}, "
            f"mean_puzzle_examples {m.mean_puzzle_examples:.3f}, seq_len {m.seq_len}, vocab {m.vocab_size}; "
            f"first batch of set {set_name!r}: {shapes}, {effective} effective"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--official", required=True, help="checkout of the official TRM code")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    sys.path.insert(0, args.official)
    failed = 0
    for d in args.dirs:
        try:
            check(d)
        except Exception as e:  # noqa: BLE001 - every rejection is reported, then counted
            print(f"{d}: REJECTED: {type(e).__name__}: {e}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
