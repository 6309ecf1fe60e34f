"""The documented Python entry points: what the ``zkml`` command line itself calls.

Each function takes what a user names (paths, arrays, bundles) and returns a
typed result; errors are :class:`zkml.errors.ZkmlError` subclasses with a
one-line message. Example (``examples/quickstart.py``)::

    import zkml

    circuit = zkml.compile("models/digits_mlp.onnx", calibration="models/digits_calibration.json")
    bundle = zkml.prove(circuit, "models/digits_input.json")
    verdict = zkml.verify(bundle)
    assert verdict.valid and verdict.model_bound
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from zkml.bundle import Bundle
    from zkml.circuit import Circuit
    from zkml.evm.deploy import DeployResult
    from zkml.reproduce import Reproduction
    from zkml.store import Store
    from zkml.verify import Verdict

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _store(store: Store | str | Path | None) -> Store:
    from zkml.store import Store

    return store if isinstance(store, Store) else Store(store)


def compile(  # noqa: A001 - the verb users expect
    target: str | Path,
    *,
    calibration: str | Path | None = None,
    store: Store | str | Path | None = None,
    srs: str | Path | None = None,
    progress: Progress = _quiet,
    **options: Any,
) -> Circuit:
    """Compile an ONNX model (or a ``circuits/*.toml`` recipe) into a circuit in the store; cached by content.

    ``options`` are :class:`zkml.calibrate.CircuitOptions` fields (``batch_size``,
    ``input_visibility``, ``param_visibility``, ``output_visibility``, ``max_logrows``, …).

    Raises:
        ModelError, ConfigError, CircuitError, SRSError.
    """
    from zkml.targets import resolve_circuit

    circuit, _ = resolve_circuit(str(target), _store(store), calibration=Path(calibration) if calibration else None,
                                 overrides=options, srs=Path(srs) if srs else None, progress=progress)
    return circuit


def prove(
    circuit: Circuit | str | Path,
    input: Any,  # noqa: A002 - the CLI's name
    *,
    store: Store | str | Path | None = None,
    timeout: float | None = None,
    reveal_input: bool | None = None,
    progress: Progress = _quiet,
) -> Bundle:
    """Prove ``input`` (a path in any supported format, or an array) and return the proof bundle.

    ``circuit`` is a :class:`~zkml.circuit.Circuit`, or what ``compile`` takes
    (an ONNX resolves to its current circuit in the store).

    Raises:
        InputError, ProofError, ProveTimeout.
    """
    from zkml.circuit import Circuit
    from zkml.inputs import read_raw
    from zkml.targets import resolve_circuit
    from zkml.prove import DEFAULT_TIMEOUT_S
    from zkml.prove import prove as _prove

    c = circuit if isinstance(circuit, Circuit) else resolve_circuit(str(circuit), _store(store), progress=progress)[0]
    raw = read_raw(Path(input)) if isinstance(input, str | Path) else np.asarray(input)
    return _prove(c, raw, timeout=timeout or DEFAULT_TIMEOUT_S, reveal_input=reveal_input, progress=progress)


def verify(
    bundle: Bundle | str | Path,
    *,
    store: Store | str | Path | None = None,
    circuit: str | Path | None = None,
    model: str | Path | None = None,
    trusted_srs: Sequence[str] = (),
    progress: Progress = _quiet,
) -> Verdict:
    """Verify a bundle under the trust model (see :mod:`zkml.verify`); ``model`` reproduces and binds it.

    Returns a verdict (``valid``, ``reason``, ``claims``, ``model_bound``, ``srs``); raises only when
    nothing could be checked (missing artifacts, malformed bundle).
    """
    from zkml.bundle import Bundle
    from zkml.verify import verify as _verify

    b = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
    return _verify(b, _store(store), circuit=circuit, model=Path(model) if model else None,
                   trusted_srs=tuple(trusted_srs), progress=progress)


def reproduce(model: str | Path, bundle: Bundle | str | Path, *, store: Store | str | Path | None = None,
              progress: Progress = _quiet) -> Reproduction:
    """Does the vk of ``bundle``'s circuit belong to ``model``? (recompile, regenerate, compare)."""
    from zkml.bundle import Bundle
    from zkml.reproduce import reproduce_named

    b = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
    return reproduce_named(Path(model), _store(store), bundle=b, progress=progress)


def deploy(
    circuit: Circuit | str | Path,
    *,
    store: Store | str | Path | None = None,
    rpc_url: str | None = None,
    key_file: str | Path | None = None,
    model_id: str | None = None,
    progress: Progress = _quiet,
    **kwargs: Any,
) -> DeployResult:
    """Deploy the circuit's verifier and register it (the embedded anvil when no ``rpc_url``).

    ``kwargs`` go to :func:`zkml.evm.deploy.deploy_circuit` (``batch``, ``challenge_window``, …).
    """
    from zkml.circuit import Circuit
    from zkml.evm.deploy import deploy_circuit, open_chain
    from zkml.targets import resolve_circuit

    st = _store(store)
    c = circuit if isinstance(circuit, Circuit) else resolve_circuit(str(circuit), st, progress=progress)[0]
    chain = open_chain(st, rpc_url, key_file, progress=progress)
    return deploy_circuit(c, st, chain, model_id=model_id, progress=progress, **kwargs)
