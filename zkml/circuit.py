"""Compile + setup: from an ONNX model to a cached, verifiable circuit.

``compile_model`` is the one entry point. It derives the circuit id from the
digest of everything that determines the circuit, returns the cached folder
when its manifest validates (instant), and otherwise builds it under a lock:
calibrate -> compile -> SRS -> setup (pk, vk) -> manifest, in a staging folder
renamed into place at the end.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkml.calibrate import AccuracyReport, CircuitOptions, calibrate
from zkml.errors import CircuitError, ConfigError, StoreError
from zkml.onnx_check import ModelInfo, load_model
from zkml.srs import DEV_WARNING, SRS, ceremony_srs, dev_srs, identify, read_header
from zkml.store import Manifest, Store
from zkml.util import native_output_captured, sha256_bytes, sha256_file, sha256_json

CIRCUIT_FORMAT = 1
FILES = ("model.onnx", "settings.json", "model.compiled", "vk.key", "pk.key", "calibration.json")


@dataclass(frozen=True)
class Circuit:
    """A built circuit in the store: paths plus the digests that identify them."""

    folder: Path
    """The circuit's folder in the store."""
    circuit_id: str
    """Short content id (prefix of the store key digest)."""
    manifest: dict[str, Any]
    """The validated manifest."""
    srs: SRS
    """The SRS the keys were made with."""

    # Paths
    @property
    def onnx(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def settings_path(self) -> Path:
        return self.folder / "settings.json"

    @property
    def compiled(self) -> Path:
        return self.folder / "model.compiled"

    @property
    def vk(self) -> Path:
        return self.folder / "vk.key"

    @property
    def pk(self) -> Path:
        return self.folder / "pk.key"

    # Facts
    @property
    def settings(self) -> dict[str, Any]:
        return json.loads(self.settings_path.read_text())

    @property
    def files(self) -> dict[str, str]:
        return dict(self.manifest["files"])

    @property
    def model_sha256(self) -> str:
        return str(self.manifest["model"]["sha256"])

    @property
    def logrows(self) -> int:
        return int(self.manifest["logrows"])

    @property
    def batch_size(self) -> int:
        return int(self.manifest["options"]["batch_size"])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.manifest["model"]["sample_shape"])

    @property
    def input_name(self) -> str:
        return str(self.manifest["model"]["input_name"])

    @property
    def options(self) -> CircuitOptions:
        o = dict(self.manifest["options"])
        o["scales"] = tuple(o["scales"]) if o.get("scales") else None
        return CircuitOptions(**o)

    @property
    def calibration(self) -> dict[str, Any]:
        return json.loads((self.folder / "calibration.json").read_text())

    def artifacts(self) -> Any:
        """The circuit's public artifacts for :mod:`zkml.verify`, trusted: this store built them."""
        from zkml.verify import Artifacts

        wc = self.manifest.get("weights_commitment")
        return Artifacts(
            settings=self.settings_path, vk=self.vk, srs=self.srs.path, compiled=self.compiled, source="store",
            circuit_id=self.circuit_id, model_sha256=self.model_sha256, input_name=self.input_name,
            sample_shape=tuple(self.sample_shape), weights_commitment=tuple(wc) if wc else None,
            model_basis=f"this store built circuit {self.circuit_id} from it (every file digest-checked)",
        )

    def srs_origin(self) -> Any:
        """Where this circuit's SRS comes from (:func:`zkml.srs.identify`)."""
        from zkml.srs import identify

        return identify(self.srs.path, self.folder.parent.parent)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (what ``zkml inspect CIRCUIT`` prints)."""
        s = self.settings
        cal = self.calibration
        return {
            "circuit_id": self.circuit_id,
            "folder": str(self.folder),
            "model_sha256": self.model_sha256,
            "logrows": self.logrows,
            "num_rows": s.get("num_rows"),
            "batch_size": self.batch_size,
            "input_scale": s["run_args"]["input_scale"],
            "param_scale": s["run_args"]["param_scale"],
            "visibility": {
                "input": self.options.input_visibility,
                "params": self.options.param_visibility,
                "output": self.options.output_visibility,
            },
            "pk_bytes": self.pk.stat().st_size,
            "vk_bytes": self.vk.stat().st_size,
            "srs": {**self.srs.describe(), "origin": self.srs_origin().as_dict()},
            "files": self.files,
            "accuracy": cal.get("report"),
            "tools": self.manifest.get("tools"),
        }


def circuit_key(info: ModelInfo, options: CircuitOptions, calibration: np.ndarray, srs_id: str) -> dict[str, Any]:
    """Everything that determines a circuit; its digest is the store key."""
    import ezkl

    return {
        "circuit_format": CIRCUIT_FORMAT,
        "onnx_sha256": info.sha256,
        "options": options.key(),
        "calibration_sha256": sha256_bytes(
            np.ascontiguousarray(calibration, dtype="<f4").tobytes() + repr(calibration.shape).encode()
        ),
        "ezkl": str(getattr(ezkl, "__version__", "unknown")),
        "srs": srs_id,
    }


def open_circuit(folder: Path, store: Store) -> Circuit:
    """Open a circuit folder, checking every file against the manifest.

    Raises:
        StoreError: missing or corrupt (a file does not match its digest).
    """
    manifest, reason = store.read_manifest(folder)
    if manifest is None:
        raise StoreError(f"circuit {folder.name} is not usable: {reason}")
    return _from_manifest(manifest, store)


def _from_manifest(manifest: Manifest, store: Store) -> Circuit:
    m = manifest.data
    name = manifest.folder.name
    # The manifest must be the one this store wrote for this folder's key
    try:
        consistent = (
            m["circuit_id"] == name
            and m["store_key"] == sha256_json(m["key"])
            and str(m["store_key"]).startswith(name)
            and m["key"]["onnx_sha256"] == m["model"]["sha256"] == m["files"]["model.onnx"]
        )
        s = m["srs"]
        kind, logrows, digest = str(s["kind"]), int(s["logrows"]), str(s["sha256"])
    except (KeyError, TypeError, ValueError):
        consistent = False
    if not consistent:
        raise StoreError(f"circuit {name}: its manifest does not match its store key; rebuild it")
    if kind == "dev":
        srs = dev_srs(store.root, logrows)
        if srs.sha256 != digest:
            raise StoreError(f"circuit {name}: its dev SRS changed since setup; rebuild it")
    else:
        p = Path(s["path"])
        if read_header(p) != logrows or sha256_file(p) != digest:
            raise StoreError(f"circuit {name}: SRS file {p} changed since setup")
        srs = SRS(path=p, logrows=logrows, sha256=digest, kind="file")
    return Circuit(folder=manifest.folder, circuit_id=m["circuit_id"], manifest=m, srs=srs)


def compile_model(
    onnx_path: str | Path,
    calibration: np.ndarray,
    options: CircuitOptions,
    *,
    store: Store,
    srs_path: str | Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[Circuit, bool]:
    """Return ``(circuit, cache_hit)`` for this model, options and calibration data.

    Raises:
        ModelError / UnsupportedOpsError: the ONNX is unusable.
        ConfigError: bad options (e.g. a batch size the ONNX cannot take).
        CircuitError / SRSError: calibration, compile or setup failed.
    """
    options.validate()
    info = load_model(onnx_path)
    if not info.batch_symbolic and info.batch_dim != options.batch_size:
        raise ConfigError(
            f"{onnx_path}: the ONNX batch axis is fixed at {info.batch_dim}; "
            f"compile with --batch {info.batch_dim} or export with a symbolic batch axis"
        )
    calibration = np.asarray(calibration, dtype=np.float32)
    if len(calibration) < 1:
        raise ConfigError("calibration data is empty")
    srs_id = "dev"
    if srs_path is not None:
        srs_id = "ceremony:" + ceremony_srs(srs_path, read_header(Path(srs_path))).sha256  # key kept stable
    key = circuit_key(info, options, calibration, srs_id)
    digest = sha256_json(key)
    cid = digest[:20]
    folder = store.circuit_dir(cid)

    # Cache hit (checked again under the lock: another process may be building it)
    manifest, reason = store.read_manifest(folder)
    if manifest is not None:
        return _from_manifest(manifest, store), True
    with store.lock(cid):
        manifest, reason = store.read_manifest(folder)
        if manifest is not None:
            return _from_manifest(manifest, store), True
        if folder.exists():
            progress(f"rebuilding circuit {cid}: {reason}")
        circuit = _build(info, calibration, options, store, cid, digest, key, srs_path, progress)
        return circuit, False


def _build(
    info: ModelInfo,
    calibration: np.ndarray,
    options: CircuitOptions,
    store: Store,
    cid: str,
    digest: str,
    key: dict[str, Any],
    srs_path: str | Path | None,
    progress: Callable[[str], None],
) -> Circuit:
    import ezkl

    timings: dict[str, float] = {}
    staging = store.staging_dir(cid)
    try:
        shutil.copyfile(info.path, staging / "model.onnx")
        # Calibrate (settings) and compile
        t = time.perf_counter()
        cal = calibrate(staging / "model.onnx", info, calibration, options, staging / "calibration", progress)
        timings["calibrate"] = time.perf_counter() - t
        settings_path = staging / "settings.json"
        settings_path.write_text(json.dumps(cal.settings, indent=1))
        t = time.perf_counter()
        progress(f"compiling circuit (scale {cal.scale}, logrows {cal.settings['run_args']['logrows']})")
        try:
            with native_output_captured():
                ezkl.compile_circuit(str(staging / "model.onnx"), str(staging / "model.compiled"), str(settings_path))
        except RuntimeError as e:
            raise CircuitError(f"ezkl compile failed: {e}") from e
        timings["compile"] = time.perf_counter() - t
        # SRS
        logrows = int(cal.settings["run_args"]["logrows"])
        t = time.perf_counter()
        if srs_path is None:
            progress(f"dev SRS k={logrows}: {DEV_WARNING}")
            srs = dev_srs(store.root, logrows)
        else:
            srs = ceremony_srs(srs_path, logrows)
            origin = identify(srs.path, store.root)
            progress(f"SRS {srs.path.name}: {origin.label}")
        timings["srs"] = time.perf_counter() - t
        # Keys
        t = time.perf_counter()
        progress(f"generating proving and verifying keys (2^{logrows} rows)")
        try:
            with native_output_captured():
                ok = ezkl.setup(
                    str(staging / "model.compiled"), str(staging / "vk.key"), str(staging / "pk.key"),
                    srs_path=str(srs.path),
                )
        except RuntimeError as e:
            raise CircuitError(f"ezkl setup failed: {e}") from e
        if not ok:
            raise CircuitError("ezkl setup returned false")
        timings["setup"] = time.perf_counter() - t
        weights_commitment = _weights_commitment(staging, cal.settings, calibration, srs) if options.param_visibility == "hashed" else None
        shutil.rmtree(staging / "calibration", ignore_errors=True)
        (staging / "calibration.json").write_text(
            json.dumps(
                {"scale": cal.scale, "report": cal.report.as_dict(), "tried": cal.tried, "samples": len(calibration)},
                indent=1,
            )
        )
        srs_meta: dict[str, Any] = srs.describe()
        if srs.kind != "dev":
            srs_meta["path"] = str(srs.path)
        store.write_manifest(
            staging,
            list(FILES),
            {
                "circuit_id": cid,
                "store_key": digest,
                "key": key,
                "model": {
                    "sha256": info.sha256,
                    "source": str(info.path),
                    "input_name": info.input_name,
                    "sample_shape": list(info.sample_shape),
                    "opset": info.opset,
                    "op_counts": info.op_counts,
                    "n_params": info.n_params,
                },
                "options": options.key(),
                "logrows": logrows,
                "weights_commitment": weights_commitment,
                "srs": srs_meta,
                "build_seconds": timings,
            },
        )
        folder = store.publish(staging, cid)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return open_circuit(folder, store)


def _weights_commitment(staging: Path, settings: dict[str, Any], calibration: np.ndarray, srs: SRS) -> list[str]:
    """Poseidon commitment of the weights (a public instance when params are hashed).

    It does not depend on the input, so one witness of a calibration sample gives it.
    """
    import ezkl

    from zkml.calibrate import batches
    from zkml.inputs import to_ezkl_json

    batch = int(dict(settings["run_args"]["variables"]).get("batch_size", 1))
    data, wit = staging / "wc_input.json", staging / "wc_witness.json"
    data.write_text(json.dumps(to_ezkl_json(batches(calibration[:batch], batch)[0])))
    try:
        with native_output_captured():
            ezkl.gen_witness(str(data), str(staging / "model.compiled"), str(wit), vk_path=str(staging / "vk.key"), srs_path=str(srs.path))
        commitment = [str(x) for x in json.loads(wit.read_text())["processed_params"]["poseidon_hash"]]
    except (RuntimeError, KeyError, TypeError) as e:
        raise CircuitError(f"could not compute the weights commitment: {e}") from e
    finally:
        data.unlink(missing_ok=True)
        wit.unlink(missing_ok=True)
    return commitment


def accuracy_report(circuit: Circuit) -> AccuracyReport:
    """The calibration-set accuracy recorded when the circuit was built."""
    return AccuracyReport(**circuit.calibration["report"])


