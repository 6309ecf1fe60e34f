"""Export a torch module to ONNX the way zkml's circuits want it.

Fixed opset, every axis fixed except the batch axis (named ``batch_size``, so
a circuit can be compiled for any batch), then the op-coverage check.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any

from zkml.errors import ConfigError, ModelError
from zkml.onnx_check import ModelInfo, load_model
from zkml.util import atomic_path

DEFAULT_OPSET = 17


def load_factory(spec: str) -> Any:
    """Resolve ``path/to/file.py:factory`` (or ``package.module:factory``) and call it.

    Raises:
        ConfigError: bad spec, missing file or attribute.
        ModelError: the factory raised or did not return a torch module.
    """
    import torch

    if ":" not in spec:
        raise ConfigError(f"expected MODULE.py:FACTORY, got {spec!r}")
    target, name = spec.rsplit(":", 1)
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"module file not found: {path}")
        mod_name = f"zkml_user_{abs(hash(path.resolve()))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:
            raise ModelError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ConfigError(f"cannot import module {target!r}: {e}") from None
    factory = getattr(module, name, None)
    if factory is None:
        raise ConfigError(f"{target} has no attribute {name!r}")
    try:
        model = factory() if callable(factory) and not isinstance(factory, torch.nn.Module) else factory
    except Exception as e:
        raise ModelError(f"{spec} raised {type(e).__name__}: {e}") from e
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def export_module(spec: str, sample_shape: tuple[int, ...], out: str | Path, *, opset: int = DEFAULT_OPSET) -> ModelInfo:
    """Export the module ``spec`` for samples of ``sample_shape`` and check the result.

    ``sample_shape`` is one sample's shape; a leading 1 (``1,64``) is read as
    the batch axis and dropped.

    Raises:
        ConfigError / ModelError / UnsupportedOpsError.
    """
    import torch

    if len(sample_shape) > 1 and sample_shape[0] == 1:
        sample_shape = sample_shape[1:]
    if not sample_shape or any(d <= 0 for d in sample_shape):
        raise ConfigError(f"bad shape {list(sample_shape)}")
    model = load_factory(spec)
    dummy = torch.zeros(1, *sample_shape)
    out = Path(out)
    with atomic_path(out) as tmp:
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model, (dummy,), str(tmp), opset_version=opset,
                    input_names=["input"], output_names=["output"],
                    dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}},
                    dynamo=False,
                )
        except Exception as e:
            raise ModelError(f"torch.onnx.export failed: {type(e).__name__}: {str(e).splitlines()[0]}") from e
        load_model(tmp)  # refuse to publish a model we cannot compile
    return load_model(out)
