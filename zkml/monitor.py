"""Drift monitoring of a deployed model over block windows, and the on-chain circuit breaker.

What is read, and how far each part is trusted:

1. ``ProofVerified`` events of the model (the registry's record of every proof checked on chain) and the
   gas of each of those transactions (their receipts): the chain's word.
2. Proof bundles (``--bundles DIR``, searched recursively) give the public instances of those proofs. A bundle's proof counts
   only if ``keccak256(abi.encodePacked(instances))`` equals an event's ``instancesHash``, so the
   values used are exactly the instances the registry verified; the rest of the bundle is ignored.
   Inputs and outputs are cut from the instances with the *registered* layout and de-quantized
   with the bundle's scales (metadata: a wrong scale skews the statistics, it cannot forge a proof).
3. The reference (``.npz`` with ``x`` [n, features] and ``y`` labels): the in-distribution data.

Per window of ``window`` blocks (windows without proofs are skipped):

* ``input_ks_mean`` / ``input_ks_max``: two-sample Kolmogorov-Smirnov statistic of each input feature
  against the reference's, averaged / maximised over the features;
* ``argmax_psi``: population stability index of the predicted-class histogram (argmax of the outputs)
  against the reference's label histogram (bins smoothed by 1e-3); it alerts only in a window of at
  least ``PSI_MIN_SAMPLES`` matched proofs (fewer leave most of the 10 bins empty);
* ``gas_ratio``: mean verification gas of the window over the baseline (``gas_baseline``, else the first
  window's mean): a gas spike is a denial-of-service signal.

A window whose statistic exceeds its threshold raises an alert. The circuit breaker is
``verifiers/MonitorGuard.sol``: it holds the registry's emergency role and lets its monitor accounts
only ``trip`` (pause a model, emitting the statistic), never unpause or change a record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from zkml.errors import ConfigError, InputError
from zkml.evm.chain import Chain, Contract, TxReceipt
from zkml.evm.registry import Registry
from zkml.evm.solc import DEFAULT_EVM_VERSION, CompiledContract, compile_file

GUARD_SOURCE: Final[Path] = Path(__file__).resolve().parents[1] / "verifiers" / "MonitorGuard.sol"
GUARD_CONTRACT: Final[str] = "MonitorGuard"
BN254_R: Final[int] = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: Default alert thresholds (see the module docstring; measured on the digits MLP in tests/test_monitor.py).
DEFAULT_THRESHOLDS: Final[Mapping[str, float]] = {"input_ks_mean": 0.4, "argmax_psi": 2.0, "gas_ratio": 1.5}
#: Fewest matched proofs in a window for its argmax PSI to raise an alert (over 10 classes, fewer samples
#: leave most bins empty: 8 clean digits measured a PSI of 2.2). Below it the PSI is reported, not alerted on.
PSI_MIN_SAMPLES: Final[int] = 30
#: Fixed-point scale of the statistic value in ``CircuitBreakerTripped``.
VALUE_SCALE: Final[int] = 1_000_000


# The circuit breaker


def compile_guard(*, evm_version: str = DEFAULT_EVM_VERSION,
                  cache_dir: str | os.PathLike[str] | None = None) -> CompiledContract:
    """Compile ``verifiers/MonitorGuard.sol``."""
    return compile_file(GUARD_SOURCE, GUARD_CONTRACT, evm_version=evm_version, cache_dir=cache_dir)


def deploy_guard(registry: Registry, monitors: Sequence[str], *,
                 cache_dir: str | os.PathLike[str] | None = None) -> Contract:
    """Deploy a MonitorGuard for ``registry`` with ``monitors`` and grant it the emergency role.

    The sender must be the registry's admin (it may grant roles; it holds no emergency role itself).

    Raises:
        RegistryError: the sender cannot grant the role.
        ChainError: a deployment failed.
    """
    from eth_utils import to_checksum_address

    if not monitors:
        raise ConfigError("a MonitorGuard needs at least one monitor account")
    compiled = compile_guard(cache_dir=cache_dir)
    chain = registry.chain
    dep = chain.deploy(compiled, registry.address, [to_checksum_address(m) for m in monitors])
    registry.grant_emergency_role(dep.address)
    return chain.at(compiled, dep.address, GUARD_CONTRACT)


def trip(guard: Contract, model_id: bytes, statistic: str, value: float) -> TxReceipt:
    """Pause ``model_id`` through the guard, naming the statistic (sender: a monitor account).

    Raises:
        RegistryError: the guard refused (``NotMonitor``) or the registry did (``ModelIsPaused``, ...).
    """
    from zkml.evm.abi import ContractRevert
    from zkml.evm.registry.errors import _friendly

    try:
        return guard.transact("trip", model_id, statistic, int(round(value * VALUE_SCALE)))
    except ContractRevert as e:
        raise _friendly(e) from None


# Observations


@dataclass(frozen=True)
class Observation:
    """One proof the registry verified, with its instances when a bundle supplied them."""

    block: int
    """Block of the ``ProofVerified`` event."""
    tx: str
    """Its transaction."""
    gas: int
    """Gas that transaction used."""
    inputs: tuple[float, ...] | None = field(default=None, repr=False)
    """De-quantized public inputs (None: no bundle matched the event's instances hash)."""
    outputs: tuple[float, ...] | None = field(default=None, repr=False)
    """De-quantized public outputs."""


def signed_felt(v: int) -> int:
    """A BN254 field element as the signed integer it encodes (the upper half of the field is negative)."""
    return v - BN254_R if v > BN254_R // 2 else v


def _bundle_index(bundles_dir: Path) -> dict[bytes, tuple[list[int], int, int]]:
    """instancesHash -> (instances, input scale, output scale) of every proof in the bundles of ``bundles_dir``."""
    from eth_utils import keccak

    from zkml.bundle import Bundle
    from zkml.errors import ZkmlError
    from zkml.evm.verifier import felt_to_int

    if not bundles_dir.is_dir():
        raise InputError(f"{bundles_dir}: not a directory")
    out: dict[bytes, tuple[list[int], int, int]] = {}
    for path in sorted(bundles_dir.rglob("*.json")):
        try:
            b = Bundle.load(path)
            for entry in b.proofs:
                if len(entry.instances) != 1:
                    continue
                ints = [felt_to_int(x) for x in entry.instances[0]]
                h = keccak(b"".join(i.to_bytes(32, "big") for i in ints))
                out[h] = (ints, int(b.circuit.input_scale), int(b.circuit.output_scales[0]))
        except (ZkmlError, ValueError, KeyError, IndexError, TypeError):
            continue  # not a bundle of ours: it simply matches no event
    return out


def collect(registry: Registry, model_id: bytes, bundles_dir: str | os.PathLike[str] | None = None,
            from_block: int = 0) -> list[Observation]:
    """The model's verified proofs since ``from_block`` (oldest first), with instances from matching bundles.

    Raises:
        RegistryError: unknown model.
        InputError: ``bundles_dir`` is not a directory.
    """
    info = registry.model(model_id)
    layout = info.record.layout
    index = _bundle_index(Path(bundles_dir)) if bundles_dir is not None else {}
    chain = registry.chain
    out = []
    for ev in registry.contract.history("ProofVerified", topics=["0x" + model_id.hex()], from_block=from_block):
        receipt = chain.rpc("eth_getTransactionReceipt", [ev.tx_hash])
        gas = int(receipt["gasUsed"], 16) if receipt else 0
        hit = index.get(bytes(ev.args["instancesHash"]))
        inputs = outputs = None
        if hit is not None and layout.input_len and layout.output_len:
            ints, in_scale, out_scale = hit
            inputs = tuple(signed_felt(v) / 2 ** in_scale
                           for v in ints[layout.input_offset:layout.input_offset + layout.input_len])
            outputs = tuple(signed_felt(v) / 2 ** out_scale
                            for v in ints[layout.output_offset:layout.output_offset + layout.output_len])
        out.append(Observation(ev.block, ev.tx_hash, gas, inputs, outputs))
    return out


# Statistics


@dataclass(frozen=True)
class WindowStats:
    """The statistics of one block window."""

    start_block: int
    """First block of the window."""
    end_block: int
    """Last block of the window."""
    proofs: int
    """Verified proofs in it."""
    matched: int
    """Of those, with instances from a bundle."""
    input_ks_mean: float | None
    """Mean over features of the KS statistic against the reference (None: no matched proof)."""
    input_ks_max: float | None
    """Max over features of the KS statistic."""
    argmax_psi: float | None
    """PSI of the predicted-class histogram against the reference labels."""
    argmax_hist: list[int] | None
    """Predicted-class counts."""
    gas_mean: float
    """Mean verification gas."""
    gas_ratio: float
    """``gas_mean`` over the baseline."""
    alerts: list[str]
    """Statistics over their threshold."""


@dataclass(frozen=True)
class DriftReport:
    """A monitor run."""

    model_id: str
    """0x model id."""
    window: int
    """Blocks per window."""
    thresholds: dict[str, float]
    """Alert thresholds."""
    gas_baseline: float | None
    """Gas baseline used."""
    windows: list[WindowStats]
    """Per window, oldest first."""
    unmatched: int
    """Verified proofs no bundle matched (they count for gas only)."""

    @property
    def alert(self) -> tuple[int, str, float] | None:
        """The first alert: (window index, statistic, value), or None."""
        for i, w in enumerate(self.windows):
            for stat in w.alerts:
                return i, stat, float(getattr(w, stat))
        return None

    def to_json(self) -> dict[str, Any]:
        a = self.alert
        return {**{k: v for k, v in asdict(self).items()},
                "alert": None if a is None else {"window": a[0], "statistic": a[1], "value": a[2]}}


def psi(expected: np.ndarray, observed: np.ndarray, eps: float = 1e-3) -> float:
    """Population stability index of two histograms (counts), bins smoothed by ``eps``."""
    p = expected / max(expected.sum(), 1) + eps
    q = observed / max(observed.sum(), 1) + eps
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def ks_per_feature(reference: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Two-sample KS statistic of each column of ``sample`` against ``reference``'s."""
    from scipy.stats import ks_2samp

    return np.array([ks_2samp(reference[:, j], sample[:, j]).statistic for j in range(reference.shape[1])])


def load_reference(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """``x`` [n, features] and ``y`` [n] of a reference ``.npz``.

    Raises:
        InputError: unreadable, or without x and y.
    """
    try:
        with np.load(path) as z:
            x, y = np.asarray(z["x"], dtype=np.float64), np.asarray(z["y"]).astype(int)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}: not a reference .npz with x and y ({e})") from None
    return x.reshape(len(x), -1), y


def drift_report(observations: Sequence[Observation], reference_x: np.ndarray, reference_y: np.ndarray, *,
                 model_id: str, window: int, thresholds: Mapping[str, float] = DEFAULT_THRESHOLDS,
                 gas_baseline: float | None = None, from_block: int | None = None) -> DriftReport:
    """The statistics of ``observations`` per window of ``window`` blocks, with their alerts.

    Raises:
        ConfigError: ``window`` < 1, or the inputs do not have the reference's feature count.
    """
    if window < 1:
        raise ConfigError("--window must be at least 1 block")
    thr = {**DEFAULT_THRESHOLDS, **thresholds}
    if not observations:
        return DriftReport(model_id, window, thr, gas_baseline, [], 0)
    start = from_block if from_block is not None else observations[0].block
    groups: dict[int, list[Observation]] = {}
    for o in observations:
        groups.setdefault((o.block - start) // window, []).append(o)
    n_classes = int(max(reference_y.max() + 1, 2))
    ref_hist = np.bincount(reference_y, minlength=n_classes)
    baseline = gas_baseline
    windows = []
    for k in sorted(groups):
        obs = groups[k]
        gas_mean = float(np.mean([o.gas for o in obs]))
        if baseline is None:
            baseline = gas_mean
        matched = [o for o in obs if o.inputs is not None and o.outputs is not None]
        ks_mean = ks_max = a_psi = None
        hist = None
        if matched:
            xs = np.array([o.inputs for o in matched], dtype=np.float64)
            if xs.shape[1] != reference_x.shape[1]:
                raise ConfigError(f"the proofs carry {xs.shape[1]} inputs, the reference {reference_x.shape[1]} features")
            ks = ks_per_feature(reference_x, xs)
            ks_mean, ks_max = float(ks.mean()), float(ks.max())
            preds = np.array([int(np.argmax(o.outputs)) for o in matched])
            h = np.bincount(preds, minlength=n_classes)[:n_classes]
            hist = [int(c) for c in h]
            a_psi = psi(ref_hist.astype(float), h.astype(float))
        ratio = gas_mean / baseline if baseline else 1.0
        values = {"input_ks_mean": ks_mean, "argmax_psi": a_psi, "gas_ratio": ratio}
        if len(matched) < PSI_MIN_SAMPLES:
            values["argmax_psi"] = None  # reported, too few samples to alert on
        alerts = [s for s, v in values.items() if v is not None and v > thr[s]]
        windows.append(WindowStats(start + k * window, start + (k + 1) * window - 1, len(obs), len(matched),
                                   ks_mean, ks_max, a_psi, hist, gas_mean, ratio, alerts))
    unmatched = sum(1 for o in observations if o.inputs is None)
    return DriftReport(model_id, window, thr, baseline, windows, unmatched)


def write_plot(report: DriftReport, path: str | os.PathLike[str]) -> None:
    """A PNG of the statistics over windows with their thresholds; alert windows shaded red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [w.start_block for w in report.windows]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    panels = [("input_ks_mean", "input KS (mean over features)", "input_ks_max"),
              ("argmax_psi", "argmax PSI vs reference labels", None),
              ("gas_ratio", "verification gas / baseline", None)]
    for ax, (stat, title, extra) in zip(axes, panels, strict=True):
        ys = [getattr(w, stat) if getattr(w, stat) is not None else np.nan for w in report.windows]
        ax.plot(xs, ys, "o-", label=stat)
        if extra:
            ax.plot(xs, [getattr(w, extra) if getattr(w, extra) is not None else np.nan for w in report.windows],
                    "s--", alpha=0.6, label=extra)
        ax.axhline(report.thresholds[stat], color="red", linestyle=":", label="threshold")
        for w in report.windows:
            if stat in w.alerts:
                ax.axvspan(w.start_block - 0.5, w.end_block + 0.5, color="red", alpha=0.15)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel(f"window start block ({report.window} blocks per window)")
    fig.suptitle(f"drift of model {report.model_id[:18]}…", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# One run


@dataclass(frozen=True)
class MonitorResult:
    """What ``zkml monitor`` did."""

    report: DriftReport
    """The statistics."""
    json_path: str | None
    """Where the JSON report went."""
    plot_path: str | None
    """Where the PNG went."""
    paused: dict[str, Any] | None
    """The circuit breaker's trip (tx, statistic, value), when it tripped."""


def run_monitor(registry: Registry, model_id: bytes, reference: str | os.PathLike[str], *, window: int = 10,
                bundles_dir: str | os.PathLike[str] | None = None, from_block: int = 0,
                thresholds: Mapping[str, float] = DEFAULT_THRESHOLDS, gas_baseline: float | None = None,
                out_dir: str | os.PathLike[str] | None = None, guard: Contract | None = None,
                progress: Callable[[str], None] = lambda _: None) -> MonitorResult:
    """Collect, compute the drift report, write JSON + PNG to ``out_dir``, and trip ``guard`` on an alert.

    Raises:
        InputError: unreadable reference or bundles directory.
        RegistryError: unknown model; the guard refused the trip (not a monitor, already paused).
    """
    ref_x, ref_y = load_reference(reference)
    progress(f"reading ProofVerified events of {('0x' + model_id.hex())[:18]}… from block {from_block}")
    obs = collect(registry, model_id, bundles_dir, from_block)
    report = drift_report(obs, ref_x, ref_y, model_id="0x" + model_id.hex(), window=window, thresholds=thresholds,
                          gas_baseline=gas_baseline, from_block=from_block or None)
    json_path = plot_path = None
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        json_path = str(d / "monitor.json")
        Path(json_path).write_text(json.dumps(report.to_json(), indent=2))
        if report.windows:
            plot_path = str(d / "monitor.png")
            write_plot(report, plot_path)
    paused = None
    alert = report.alert
    if alert is not None and guard is not None:
        _, stat, value = alert
        progress(f"alert: {stat} = {value:.3f}; tripping the circuit breaker {guard.address}")
        receipt = trip(guard, model_id, stat, value)
        paused = {"guard": guard.address, "tx": receipt.tx_hash, "statistic": stat, "value": value,
                  "block": receipt.block}
    return MonitorResult(report, json_path, plot_path, paused)


def save_guard(store: Any, chain: Chain, address: str) -> None:
    """Record ``address`` as the store's MonitorGuard on ``chain`` (used by ``zkml monitor --pause-on-alert``)."""
    from zkml.evm.deploy import load_records, save_records

    rec = load_records(store, chain)
    rec["monitor_guard"] = address
    save_records(store, chain, rec)


def open_guard(store: Any, chain: Chain, address: str | None = None) -> Contract:
    """The MonitorGuard at ``address``, else the one the store recorded for ``chain``.

    Raises:
        ConfigError: none given or recorded.
        ChainError: no code there.
    """
    from zkml.evm.deploy import load_records

    addr = address or load_records(store, chain).get("monitor_guard")
    if not addr:
        raise ConfigError(f"no MonitorGuard recorded for chain {chain.chain_id} in this store: pass --guard ADDRESS")
    return chain.at(compile_guard(cache_dir=store.solc_cache), str(addr), GUARD_CONTRACT)


__all__ = [
    "DEFAULT_THRESHOLDS", "GUARD_CONTRACT", "GUARD_SOURCE", "DriftReport", "MonitorResult", "Observation",
    "WindowStats", "collect", "compile_guard", "deploy_guard", "drift_report", "ks_per_feature", "load_reference",
    "psi", "run_monitor", "trip", "write_plot",
]
