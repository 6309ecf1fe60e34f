"""Commitments: the dataset Merkle tree and its inclusion proofs, and digests of a model's bytes and weights.

* :mod:`zkml.commitments.merkle` — the tree (OpenZeppelin ``MerkleProof`` compatible), proofs, bytes32 helpers.
* :mod:`zkml.commitments.dataset` — rows and labels as leaves, the committed dataset file, row checks.
* :mod:`zkml.commitments.model` — the ONNX digest and a digest of the weights alone (named in registry records).
"""

from zkml.commitments.dataset import (
    COMMITMENT_FORMAT,
    COMMITMENT_FORMAT_VERSION,
    FEATURE_KEYS,
    LABEL_KEYS,
    LEAF_ENCODING_SPEC,
    LEAF_ENCODING_VERSION,
    TREE_SPEC,
    CommitmentError,
    CommittedDataset,
    Dataset,
    DatasetCommitment,
    build_commitment,
    commit_dataset,
    dataset_leaves,
    dataset_row_leaf,
    encode_row,
    load_dataset,
    read_commitment,
    row_leaf,
    verify_row,
    write_commitment,
)
from zkml.commitments.merkle import MerkleTree, RowIndexError, hash_pair, hex32, process_proof, to_bytes32, verify_inclusion
from zkml.commitments.model import WEIGHTS_DOMAIN, onnx_digest, weights_digest

__all__ = [
    "COMMITMENT_FORMAT", "COMMITMENT_FORMAT_VERSION", "FEATURE_KEYS", "LABEL_KEYS", "LEAF_ENCODING_SPEC",
    "LEAF_ENCODING_VERSION", "TREE_SPEC", "WEIGHTS_DOMAIN",
    "CommitmentError", "CommittedDataset", "Dataset", "DatasetCommitment", "MerkleTree", "RowIndexError",
    "build_commitment", "commit_dataset", "dataset_leaves", "dataset_row_leaf", "encode_row", "hash_pair", "hex32",
    "load_dataset", "onnx_digest", "process_proof", "read_commitment", "row_leaf", "to_bytes32", "verify_inclusion",
    "verify_row", "weights_digest", "write_commitment",
]
