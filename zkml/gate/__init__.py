"""The CI gate: compile, sample, prove, verify (locally and on chain), compare, judge.

``zkml gate [zkml.toml]`` reads a config naming models, the committed test set
and thresholds, runs every check for every model and exits 0 (all passed),
1 (a threshold failed; the report says which, with numbers) or 2 (the config
is wrong: unknown key, missing file, wrong type; one line).

Config (paths are relative to the config file)::

    [test_set]
    path = "models/digits_test.npz"      # .npz: x = samples, y = integer labels
    # sha256 = "…"                       # optional pin of the file's digest

    [sample]
    size = 16                            # test rows to prove; "all" = the whole set (no VRF)
    suite = "p256"                       # ECVRF suite: secp256k1 (default) | p256
    # key_file = "vrf.key"               # else $ZKML_VRF_SK (hex), else an ephemeral key
    # alpha = "…"                        # hex VRF input, only to replay a recorded sample:
    # replay = true                      #   a pinned alpha without replay = true is refused

    [thresholds]                         # defaults for every model
    min_accuracy = 0.75                  # proven (circuit) accuracy on the sample
    max_error = "auto"                   # max |float - circuit|; "auto" = zkml.compare's tolerance
    max_verify_gas = 700000              # per proof, on chain
    max_verifier_bytes = 24576           # EIP-170
    verify_local = true
    verify_onchain = true

    [[models]]
    name = "digits-mlp"
    path = "circuits/digits_mlp.toml"    # an .onnx or a circuits/*.toml recipe
    # calibration = "…"                  # for an .onnx (default: found beside it)
    # verifier = "auto"                  # per-circuit | reusable | auto (per-circuit if under EIP-170)
    # thresholds = { min_accuracy = 0.9 }  per-model overrides

Sampling. The rows to prove are ``zkml.sampling.sample_indices(beta, n, k)``
where ``beta`` is the ECVRF output for ``alpha``; unless the config sets it,
``alpha = sha256("zkml-gate/v1" || model sha256 || circuit id || test-set
sha256)``, so the sample is fixed by the exact model, circuit and test set, and
cannot be chosen by whoever runs the gate without the VRF secret key (keep it
in a CI secret, ``ZKML_VRF_SK``). A config that pins ``sample.alpha`` could be
ground (edit alpha until the VRF draws rows you like), so it is refused unless
``sample.replay = true`` says it replays a recorded sample; the report then
marks the sample as a replay. The report records suite, public key,
alpha, pi, beta and the indices: anyone can check pi against the public key
and re-derive the indices. Without a key the gate uses an ephemeral one (the
report says so): the sample is still unpredictable, but a rerun draws another.

Every check reports its value and threshold: ``compile``, ``prove``,
``accuracy``, ``error``, ``runtimes`` (tract/torch agree with onnxruntime),
``verify_local``, ``verifier_bytes``, ``verify_onchain``, ``gas``. With
``verifier = "auto"`` a circuit whose per-circuit verifier exceeds EIP-170
(the digits MLP at batch 16: 25,217 bytes) is checked with ezkl's reusable
verifier and its VK artifact instead, and the report says so.
"""

from zkml.gate.config import CONFIG_NAME, EIP170, VERIFIER_FLAVOURS, GateConfig, ModelSpec, SampleSpec, Thresholds, load_config
from zkml.gate.report import SUMMARY_ENV, GateCheck, GateReport, ModelReport, write_report
from zkml.gate.run import ALPHA_DOMAIN, KEY_FILE_FORMAT, REPLAY_NOTE, SK_ENV, derive_alpha, run_gate, vrf_sample

__all__ = [
    "ALPHA_DOMAIN", "CONFIG_NAME", "EIP170", "KEY_FILE_FORMAT", "REPLAY_NOTE", "SK_ENV", "SUMMARY_ENV", "VERIFIER_FLAVOURS",
    "GateCheck", "GateConfig", "GateReport", "ModelReport", "ModelSpec", "SampleSpec", "Thresholds",
    "derive_alpha", "load_config", "run_gate", "vrf_sample", "write_report",
]
