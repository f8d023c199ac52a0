"""Train the bundled example: a small CNN that detects the AP-1 motif TGACTCA planted in random DNA.

Writes motif_model.onnx, seqs.npy, seqs.fa and motif_sites.tsv beside this file. Needs the [torch] extra:
    pip install -e '.[cpu,torch]' && python examples/train_motif_model.py
Deterministic (fixed seeds); the committed files were made by this script.
"""

import os

import numpy as np
import torch
from torch import nn

from onnxism_converters import torch_to_onnx

from motif_sequences import LENGTH, MOTIF, random_sequences  # (beside this file)

HERE = os.path.dirname(os.path.abspath(__file__))


class MotifNet(nn.Module):
    """conv(11) -> relu -> maxpool(4) -> conv(5) -> relu -> global max -> linear: one logit."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 16, 11, padding="same")
        self.pool = nn.MaxPool1d(4)
        self.conv2 = nn.Conv1d(16, 16, 5, padding="same")
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.head(x.amax(dim=2))


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.random(6000) < 0.5
    codes, _ = random_sequences(rng, len(labels), labels)
    x = torch.from_numpy(np.eye(4, dtype=np.float32)[codes].transpose(0, 2, 1).copy())
    y = torch.from_numpy(labels.astype(np.float32))[:, None]
    model = MotifNet()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(8):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start:start + 64]
            optimiser.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
    model.eval()
    test_labels = rng.random(1000) < 0.5
    test_codes, _ = random_sequences(rng, 1000, test_labels)
    with torch.no_grad():
        test_x = torch.from_numpy(np.eye(4, dtype=np.float32)[test_codes].transpose(0, 2, 1).copy())
        accuracy = ((model(test_x)[:, 0] > 0).numpy() == test_labels).mean()
    print(f"held-out accuracy: {accuracy:.3f}")

    path = os.path.join(HERE, "motif_model.onnx")
    torch_to_onnx(model, torch.zeros(2, 4, LENGTH), path, output_names=["logit"])
    without_stack_traces(path)
    example_codes, sites = random_sequences(rng, 8, np.ones(8, dtype=bool))
    np.save(os.path.join(HERE, "seqs.npy"), np.eye(4, dtype=np.float32)[example_codes])
    with open(os.path.join(HERE, "seqs.fa"), "w") as fasta, open(os.path.join(HERE, "motif_sites.tsv"), "w") as tsv:
        tsv.write("sequence\tmotif\tstart\n")
        for n, (row, site) in enumerate(zip(example_codes, sites)):
            fasta.write(f">seq{n} {MOTIF}@{site}\n{''.join('ACGT'[c] for c in row)}\n")
            tsv.write(f"seq{n}\t{MOTIF}\t{site}\n")


def without_stack_traces(path):
    """Drop the exporter's per-node stack traces, which name the files (and folders) of the machine that exported the
    model; the computation is unchanged."""
    import onnx

    proto = onnx.load(path)
    for node in proto.graph.node:
        kept = [prop for prop in node.metadata_props if prop.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    onnx.save(proto, path)


if __name__ == "__main__":
    main()
