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
from typing import TYPE_CHECKING, Any


from zkml.calibrate import AccuracyReport, CircuitOptions, calibrate
from zkml.errors import CircuitError, ConfigError, StoreError
from zkml.inputs import feed_digest_bytes, feed_len, feed_slice, to_ezkl_json, to_feed
from zkml.onnx_check import InputSpec, ModelInfo, load_model
from zkml.srs import DEV_WARNING, SRS, ceremony_srs, dev_srs, identify, read_header
from zkml.store import Manifest, Store
from zkml.util import native_output_captured, sha256_bytes, sha256_file, sha256_json

if TYPE_CHECKING:
    from zkml.bundle import Bundle

CIRCUIT_FORMAT = 1
FILES = ("model.onnx", "settings.json", "model.compiled", "vk.key", "pk.key", "calibration.json")
PREP_FILE = "model.prep.onnx"
"""The preprocessed graph ezkl compiled, present only when the original needed preprocessing."""


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
    in_store: bool = True
    """True when the folder is one of the store's own circuits (what makes its manifest trusted)."""

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
    def inputs(self) -> tuple[InputSpec, ...]:
        """Every model input (name, sample shape, dtype)."""
        m = self.manifest["model"]
        if "inputs" in m:
            return tuple(InputSpec(str(i["name"]), tuple(int(d) for d in i["shape"]), str(i["dtype"])) for i in m["inputs"])
        return (InputSpec(self.input_name, self.sample_shape, "float32"),)

    @property
    def circuit_onnx(self) -> Path:
        """The graph ezkl compiled: the preprocessed copy when there is one, else the model itself."""
        return self.folder / PREP_FILE if PREP_FILE in self.files else self.onnx

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """How the compiled graph was derived from the model (None: compiled as is)."""
        return self.manifest.get("preprocessing")

    @property
    def options(self) -> CircuitOptions:
        o = dict(self.manifest["options"])
        o["scales"] = tuple(o["scales"]) if o.get("scales") else None
        return CircuitOptions(**o)

    @property
    def calibration(self) -> dict[str, Any]:
        return json.loads((self.folder / "calibration.json").read_text())

    def artifacts(self) -> Artifacts:
        """The circuit's public artifacts for :mod:`zkml.verify`: trusted only when this store built them.

        A folder opened from outside the store (someone else's) keeps its files
        but its manifest binds nothing: the model digest is then not known.
        """
        if not self.in_store:
            return Artifacts(settings=self.settings_path, vk=self.vk, srs=self.srs.path, compiled=self.compiled,
                             source="folder")
        wc = self.manifest.get("weights_commitment")
        return Artifacts(
            settings=self.settings_path, vk=self.vk, srs=self.srs.path, compiled=self.compiled, source="store",
            circuit_id=self.circuit_id, model_sha256=self.model_sha256, input_name=self.input_name,
            sample_shape=tuple(self.sample_shape), weights_commitment=tuple(wc) if wc else None,
            inputs=tuple(i.as_dict() for i in self.inputs),
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


@dataclass(frozen=True)
class Artifacts:
    """The public artifacts a verifier checks a bundle against, and whether it trusts them."""

    settings: Path
    """ezkl settings JSON."""
    vk: Path
    """Verifying key."""
    srs: Path
    """KZG parameters."""
    compiled: Path | None = None
    """The compiled circuit, when at hand (its digest is then checked too)."""
    source: str = "files"
    """``store`` (built by the verifier's store: trusted), ``folder`` or ``files`` (given: untrusted)."""
    circuit_id: str | None = None
    """The store's id for the circuit (store source only)."""
    model_sha256: str | None = None
    """The model the circuit was built from: set only when that is known from a trusted source."""
    input_name: str | None = None
    """The model's input name (trusted source only)."""
    sample_shape: tuple[int, ...] | None = None
    """One sample's shape (trusted source only)."""
    inputs: tuple[dict[str, Any], ...] | None = None
    """Every model input (name, shape, dtype), from a trusted source only."""
    weights_commitment: tuple[str, ...] | None = None
    """The circuit's Poseidon weights commitment, when params are hashed and known from a trusted source."""
    model_basis: str | None = None
    """Why ``model_sha256`` is trusted (e.g. "this store built circuit X from it")."""

    @property
    def trusted(self) -> bool:
        """True when the circuit comes from the verifier's own store or a reproduction."""
        return self.model_sha256 is not None


# ---------------------------------------------------------------------------
# Public artifacts for verification: where they come from decides what they can bind
# ---------------------------------------------------------------------------


def artifacts_from_store(bundle: Bundle, store: Store) -> Artifacts:
    """The bundle's circuit from the verifier's own store (trusted; every file digest-checked).

    Raises:
        StoreError: the circuit is not in this store, or is corrupt.
    """
    folder = store.circuit_dir(bundle.circuit_id)  # validates the id; stays inside the store
    if not folder.is_dir():
        raise StoreError(
            f"circuit {bundle.circuit_id} is not in store {store.root}; pass --model MODEL.onnx to reproduce it, "
            "or --circuit DIR / --settings/--vk/--srs with its public artifacts (the model is then not bound)"
        )
    return open_circuit(folder, store).artifacts()


def artifacts_from_dir(folder: Path, srs: Path | None = None) -> Artifacts:
    """Public artifacts from a circuit folder someone handed over (untrusted).

    Only ``settings.json``, ``vk.key``, ``srs.srs`` (or ``srs``) and, if present,
    ``model.compiled`` are read; a manifest in the folder is ignored: nothing
    authenticates it, so it can name no model and no SRS path.

    Raises:
        StoreError: files missing.
    """
    srs_path = srs if srs is not None else folder / "srs.srs"
    for p in (folder / "settings.json", folder / "vk.key", srs_path):
        if not p.is_file():
            hint = " (pass --srs FILE)" if p == srs_path and srs is None else ""
            raise StoreError(f"{folder}: missing {p.name}{hint}: a circuit folder needs settings.json, vk.key and srs.srs")
    compiled = folder / "model.compiled"
    return Artifacts(settings=folder / "settings.json", vk=folder / "vk.key", srs=srs_path,
                     compiled=compiled if compiled.is_file() else None, source="folder")


def named_artifacts(
    store: Store, *, circuit: str | Path | None = None, settings: Path | None = None, vk: Path | None = None,
    srs: Path | None = None,
) -> Artifacts | None:
    """The artifacts a user names: ``settings``/``vk``/``srs`` files, or ``circuit`` (an id or a folder).

    A store id, or a folder that is one of the store's own circuits, is trusted; any other folder or
    files are not. ``None`` when nothing is named.

    Raises:
        ConfigError: files named by halves, or both files and a circuit.
        StoreError: missing files, unknown or corrupt circuit.
    """
    if settings is not None or vk is not None:
        if not (settings and vk and srs):
            raise ConfigError("--settings, --vk and --srs go together")
        if circuit is not None:
            raise ConfigError("give --circuit or --settings/--vk/--srs, not both")
        return Artifacts(settings=Path(settings), vk=Path(vk), srs=Path(srs), source="files")
    if circuit is None:
        return None
    p = Path(circuit)
    if p.is_dir() and p.resolve().parent != store.circuits.resolve():
        return artifacts_from_dir(p, srs)
    return open_circuit(p if p.is_dir() else store.find_circuit(str(circuit)), store).artifacts()


def visibility_name(v: Any) -> str:
    """ezkl writes ``"Public"`` or ``{"Hashed": {"hash_is_public": true, ...}}``; zkml says ``public``/``hashed``."""
    if isinstance(v, dict):
        (name, body), = v.items()
        if name == "Hashed" and not body.get("hash_is_public", True):
            return "hashed-private"
        return str(name).lower()
    return str(v).lower()


def circuit_key(info: ModelInfo, options: CircuitOptions, calibration: Any, srs_id: str) -> dict[str, Any]:
    """Everything that determines a circuit; its digest is the store key."""
    import ezkl

    return {
        "circuit_format": CIRCUIT_FORMAT,
        "onnx_sha256": info.sha256,
        "options": options.key(),
        "calibration_sha256": sha256_bytes(feed_digest_bytes(calibration if isinstance(calibration, dict)
                                                             else to_feed(calibration, info.inputs))),
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
    in_store = manifest.folder.resolve().parent == store.circuits.resolve()
    if kind == "dev":
        srs = dev_srs(store.root, logrows)
        if srs.sha256 != digest:
            raise StoreError(f"circuit {name}: its dev SRS changed since setup; rebuild it")
    else:
        # A path in someone else's manifest is never followed: their folder must carry its SRS
        p = Path(s["path"]) if in_store else manifest.folder / "srs.srs"
        if read_header(p) != logrows or sha256_file(p) != digest:
            raise StoreError(f"circuit {name}: SRS file {p} changed since setup")
        srs = SRS(path=p, logrows=logrows, sha256=digest, kind="file")
    return Circuit(folder=manifest.folder, circuit_id=m["circuit_id"], manifest=m, srs=srs, in_store=in_store)


def compile_model(
    onnx_path: str | Path,
    calibration: Any,
    options: CircuitOptions,
    *,
    store: Store,
    srs_path: str | Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
    max_seconds: float | None = None,
    max_memory_gb: float | None = None,
) -> tuple[Circuit, bool]:
    """Return ``(circuit, cache_hit)`` for this model, options and calibration data.

    ``calibration`` is a feed (:mod:`zkml.inputs`) or, for a one-input model,
    one array of samples; a model without inputs needs none (pass ``{}``).
    ``max_seconds`` bounds the calibration search; ``max_memory_gb`` refuses
    a circuit whose estimate (:mod:`zkml.estimate`) exceeds it, before setup.

    Raises:
        ModelError / UnsupportedOpsError: the ONNX is unusable.
        ConfigError: bad options (e.g. a batch size the ONNX cannot take).
        CircuitError / SRSError: calibration, compile or setup failed.
    """
    options.validate()
    info = load_model(onnx_path, check_ops=False)  # coverage is asked of ezkl when building
    if not info.inputs and options.batch_size != 1:
        raise ConfigError(f"{onnx_path}: the model has no inputs; it is proven with batch 1")
    if info.inputs and not info.batched and options.batch_size != 1:
        raise ConfigError(f"{onnx_path}: its inputs have no shared batch axis; compile with --batch 1")
    if info.batched and not info.batch_symbolic and info.batch_dim != options.batch_size:
        raise ConfigError(
            f"{onnx_path}: the ONNX batch axis is fixed at {info.batch_dim}; "
            f"compile with --batch {info.batch_dim} or export with a symbolic batch axis"
        )
    calibration = to_feed(calibration, info.inputs, source="calibration data")
    if info.inputs and feed_len(calibration) < 1:
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
        circuit, hit = _from_manifest(manifest, store), True
    else:
        with store.lock(cid):
            manifest, reason = store.read_manifest(folder)
            if manifest is not None:
                circuit, hit = _from_manifest(manifest, store), True
            else:
                if folder.exists():
                    progress(f"rebuilding circuit {cid}: {reason}")
                if max_memory_gb is None:
                    from zkml.estimate import machine_memory_gb

                    max_memory_gb = 0.9 * machine_memory_gb()
                circuit, hit = _build(info, calibration, options, store, cid, digest, key, srs_path, progress,
                                      max_seconds, max_memory_gb), False
    store.record_circuit(info.sha256, cid)  # the model's current circuit: what `prove model.onnx` resolves to
    return circuit, hit


def _build(
    info: ModelInfo,
    calibration: Any,
    options: CircuitOptions,
    store: Store,
    cid: str,
    digest: str,
    key: dict[str, Any],
    srs_path: str | Path | None,
    progress: Callable[[str], None],
    max_seconds: float | None = None,
    max_memory_gb: float | None = None,
) -> Circuit:
    import ezkl

    from zkml.calibrate import run_args_for
    from zkml.estimate import estimate
    from zkml.preprocess import prepare

    timings: dict[str, float] = {}
    staging = store.staging_dir(cid)
    files = list(FILES)
    try:
        shutil.copyfile(info.path, staging / "model.onnx")
        # Coverage (ezkl decides) and, only if ezkl refuses the graph, preprocessing
        t = time.perf_counter()
        prep = prepare(staging / "model.onnx", staging / "calibration", run_args_for(options, 7))
        circuit_onnx = staging / "model.onnx"
        if prep.preprocessed:
            shutil.copyfile(prep.path, staging / PREP_FILE)
            circuit_onnx = staging / PREP_FILE
            files.append(PREP_FILE)
            progress(f"ezkl refused the graph as exported; compiling it after {', '.join(prep.steps)}")
        timings["coverage"] = time.perf_counter() - t
        # Calibrate (settings) and compile
        t = time.perf_counter()
        cal = calibrate(staging / "model.onnx", info, calibration, options, staging / "calibration", progress,
                        circuit_onnx=circuit_onnx, max_seconds=max_seconds, max_memory_gb=max_memory_gb)
        timings["calibrate"] = time.perf_counter() - t
        settings_path = staging / "settings.json"
        settings_path.write_text(json.dumps(cal.settings, indent=1))
        t = time.perf_counter()
        progress(f"compiling circuit (scale {cal.scale}, logrows {cal.settings['run_args']['logrows']})")
        try:
            with native_output_captured():
                ezkl.compile_circuit(str(circuit_onnx), str(staging / "model.compiled"), str(settings_path))
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
        weights_commitment = _weights_commitment(staging, cal.settings, calibration, srs, info.inputs) if options.param_visibility == "hashed" else None
        shutil.rmtree(staging / "calibration", ignore_errors=True)
        (staging / "calibration.json").write_text(
            json.dumps(
                {"scale": cal.scale, "report": cal.report.as_dict(), "tried": cal.tried,
                 "samples": feed_len(calibration), "seconds": cal.seconds, "estimate": estimate(cal.settings).as_dict()},
                indent=1,
            )
        )
        srs_meta: dict[str, Any] = srs.describe()
        if srs.kind != "dev":
            srs_meta["path"] = str(srs.path)
        store.write_manifest(
            staging,
            files,
            {
                "circuit_id": cid,
                "store_key": digest,
                "key": key,
                "model": {
                    "sha256": info.sha256,
                    "source": str(info.path),
                    "input_name": info.input_name,
                    "sample_shape": list(info.sample_shape),
                    "inputs": [i.as_dict() for i in info.inputs],
                    "opset": info.opset,
                    "op_counts": info.op_counts,
                    "n_params": info.n_params,
                },
                "options": options.key(),
                "logrows": logrows,
                "weights_commitment": weights_commitment,
                "preprocessing": prep.as_dict() if prep.preprocessed else None,
                "srs": srs_meta,
                "build_seconds": timings,
            },
        )
        folder = store.publish(staging, cid)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return open_circuit(folder, store)


def _weights_commitment(staging: Path, settings: dict[str, Any], calibration: Any, srs: SRS,
                        specs: Any = None) -> list[str]:
    """Poseidon commitment of the weights (a public instance when params are hashed).

    It does not depend on the input, so one witness of a calibration sample gives it.
    """
    import ezkl

    batch = int(dict(settings["run_args"]["variables"]).get("batch_size", 1))
    data, wit = staging / "wc_input.json", staging / "wc_witness.json"
    data.write_text(json.dumps(to_ezkl_json(feed_slice(calibration, 0, batch, batch) if calibration else {}, specs)))
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


