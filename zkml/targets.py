"""Resolving what a user names (ONNX file, recipe, circuit id or folder) to a circuit.

The CLI and the gate both go through here, so ``zkml prove model.onnx`` and
``zkml prove circuits/x.toml`` reach the same cached circuit as ``zkml compile``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path


from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model, open_circuit
from zkml.errors import ConfigError, StoreError
from zkml.inputs import read_feed
from zkml.onnx_check import load_model
from zkml.recipe import load_recipe
from zkml.store import Store
from zkml.util import sha256_file, sha256_json


def find_calibration(onnx_path: Path) -> Path | None:
    """A calibration file next to the model: ``<stem>_calibration.json``,
    ``<stem>.calibration.json``, ``calibration.json``, or the only ``*_calibration.json``."""
    d = onnx_path.parent
    for name in (f"{onnx_path.stem}_calibration.json", f"{onnx_path.stem}.calibration.json", "calibration.json"):
        if (d / name).is_file():
            return d / name
    hits = sorted(d.glob("*_calibration.json"))
    return hits[0] if len(hits) == 1 else None


def model_circuits(store: Store, onnx_sha256: str) -> list[Circuit]:
    """The model's circuits in the store, current (most recently compiled) first."""
    return [open_circuit(store.circuit_dir(cid), store) for cid in store.model_circuit_ids(onnx_sha256)]


def _matches(c: Circuit, overrides: dict[str, object], srs_sha256: str | None) -> bool:
    opts = c.options
    if any(getattr(opts, k, object()) != (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()):
        return False
    return srs_sha256 is None or (c.srs.kind != "dev" and c.srs.sha256 == srs_sha256)


def inputs_digest(model: Path, calibration: Path, options: CircuitOptions, srs: Path | None) -> tuple[str, str] | None:
    """``(digest, model sha256)`` of a compile's input files, as the store's inputs index keys them.

    The digest covers the ONNX and calibration files' bytes, the options, the SRS file (or the dev SRS)
    and the ezkl version; None when a file cannot be read (the normal path then says what is wrong).
    """
    from dataclasses import asdict

    from zkml.store import tool_versions

    try:
        model_sha = sha256_file(model)
        key = {"format": 1, "model": model_sha, "calibration": sha256_file(calibration), "options": asdict(options),
               "srs": sha256_file(srs) if srs is not None else "dev", "ezkl": tool_versions()["ezkl"]}
    except OSError:
        return None
    return sha256_json(key), model_sha


def _compiled_from_inputs(store: Store, model: Path, calibration: Path, options: CircuitOptions, srs: Path | None,
                          compile: Callable[[], tuple[Circuit, bool]]) -> tuple[Circuit, bool]:
    """The circuit these input files made before (found by their digests, no ONNX parsed), else ``compile()``.

    A recorded circuit is used only if it validates, is of this very model and has these options;
    anything else (a stale or altered record) falls back to compiling, which finds or builds the right one.
    """
    d = inputs_digest(model, calibration, options, srs)
    if d is not None:
        digest, model_sha = d
        cid = store.circuit_for_inputs(digest)
        try:
            c = open_circuit(store.circuit_dir(cid), store) if cid is not None else None
        except StoreError:  # no longer valid: compile below
            c = None
        if c is not None and c.model_sha256 == model_sha and c.options == options:
            store.record_circuit(model_sha, c.circuit_id)  # as a compile's cache hit does
            return c, True
    c, hit = compile()
    if d is not None and c.model_sha256 == d[1]:
        store.record_inputs(d[0], c.circuit_id)
    return c, hit


def resolve_circuit(
    target: str,
    store: Store,
    *,
    calibration: Path | None = None,
    options: CircuitOptions | None = None,
    overrides: dict[str, object] | None = None,
    srs: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
    max_seconds: float | None = None,
    max_memory_gb: float | None = None,
) -> tuple[Circuit, bool]:
    """Return ``(circuit, cache_hit)`` for an ONNX path, a recipe, a circuit folder or id.

    An ONNX resolves to one stable circuit: with ``calibration`` it is compiled
    (and becomes the model's current circuit); without, the model's current
    circuit in the store (the newest compiled one that fits the overrides);
    failing that, it is compiled with a calibration file found next to it.
    Nothing is ever calibrated on the input being proven.

    Raises:
        ConfigError: nothing usable named; an ONNX with no circuit and no calibration data.
        plus whatever compiling raises.
    """
    p = Path(target)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if p.suffix == ".toml":
        r = load_recipe(p, overrides)
        cal_path, srs_path = Path(calibration or r.calibration), Path(srs or r.srs) if (srs or r.srs) else None
        return _compiled_from_inputs(store, Path(r.model), cal_path, r.options, srs_path, lambda: compile_model(
            r.model, read_feed(cal_path, load_model(r.model, check_ops=False).inputs), r.options, store=store,
            srs_path=srs_path, progress=progress, max_seconds=max_seconds, max_memory_gb=max_memory_gb))
    if p.suffix == ".onnx":
        opts = replace(options or CircuitOptions(), **overrides).validate()  # bad flags: one line, before any work
        if calibration is None:
            # The warm path: a model already compiled is found by the file's digest, without parsing ONNX
            # (the circuit was built, and its model checked, from these very bytes)
            try:
                model_sha256 = sha256_file(p)
            except OSError:
                model_sha256 = None  # load_model below says what is wrong with the path
            known = model_circuits(store, model_sha256) if model_sha256 else []
            srs_sha256 = sha256_file(srs) if srs is not None else None  # once, not per candidate circuit
            fit = [c for c in known if _matches(c, overrides, srs_sha256)]
            if fit:
                if len(known) > 1:
                    progress(f"{p.name}: using its current circuit {fit[0].circuit_id} (of {len(known)} compiled)")
                return fit[0], True
        if calibration is not None:
            cal_file = Path(calibration)
            return _compiled_from_inputs(store, p, cal_file, opts, srs, lambda: compile_model(
                p, read_feed(cal_file, load_model(p, check_ops=False).inputs), opts, store=store, srs_path=srs,
                progress=progress, max_seconds=max_seconds, max_memory_gb=max_memory_gb))
        info = load_model(p, check_ops=False)
        if not info.inputs:
            progress(f"{p.name}: a graph without inputs: nothing to calibrate on, compiling it")
            return compile_model(p, {}, opts, store=store, srs_path=srs, progress=progress,
                                 max_seconds=max_seconds, max_memory_gb=max_memory_gb)
        cal_path = find_calibration(p)
        if cal_path is not None:
            progress(f"{p.name}: compiling with the calibration data beside it ({cal_path.name})")
            return compile_model(p, read_feed(cal_path, info.inputs), opts, store=store, srs_path=srs,
                                 progress=progress, max_seconds=max_seconds, max_memory_gb=max_memory_gb)
        if known:
            wanted = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the given SRS"
            raise ConfigError(
                f"{p.name} has {len(known)} circuit(s) in store {store.root} ({', '.join(c.circuit_id for c in known)}), "
                f"none with {wanted}: name one by id, or compile with --calibration DATA"
            )
        raise ConfigError(
            f"no circuit for {p.name} (sha256 {info.sha256[:16]}…) in store {store.root} and no calibration data: "
            f"run `zkml compile {p} --calibration DATA` first (zkml never calibrates on the input it proves)"
        )
    if p.is_dir():
        return open_circuit(p, store), True
    if p.exists():
        raise ConfigError(f"{p}: expected an .onnx model, a circuits/*.toml recipe, a circuit folder or a circuit id")
    return open_circuit(store.find_circuit(target), store), True
