"""Base models: where a base model comes from (for the card and the summary), loading, CPU-friendly freezing."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cie10.errors import ConfigError, HubError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaseModelInfo:
    """What a run starts from: the name given, the path or id loaded, and its provenance."""

    name: str
    """As given: `default`, a Hub id or a path."""
    load_path: str
    """What `SentenceTransformer` / `CrossEncoder` loads."""
    hub_id: str | None
    """The Hub model it is (or is a copy of), for the card's `base_model`."""
    license: str | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the run summary."""
        return asdict(self)


def describe_base_model(name: str) -> BaseModelInfo:
    """Resolve `name` (`default` builds the embedded model if needed; ids and paths are kept as they are)."""
    from cie10 import embedded_model

    if (name or "").strip() in ("", embedded_model.DEFAULT_MODEL_NAME):
        path = embedded_model.resolve_model(embedded_model.DEFAULT_MODEL_NAME)
        return BaseModelInfo(
            name=embedded_model.DEFAULT_MODEL_NAME,
            load_path=path,
            hub_id=embedded_model.ORIGINAL_MODEL_ID,
            license=embedded_model.ORIGINAL_LICENSE,
            description=embedded_model.EMBEDDED_MODEL_DESCRIPTION,
        )
    path = Path(name).expanduser()
    if path.is_dir():
        return _describe_local(name, path)
    check_hub_model("base model", name, None, path)
    return BaseModelInfo(name, name, name, None, f"The Hub model {name}, as published there.")


def looks_like_path(name: str) -> bool:
    """Whether `name` can only be a folder, not a Hub id (`org/name` or `name`): `./x`, `/x`, `~/x`, `a/b/c`."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        return True
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def check_hub_model(what: str, name: str, revision: str | None, path: Path | None = None) -> None:
    """Raise one clear error unless `name` is an existing folder or a model repo that the Hub (or cache) has.

    Called before a run writes anything, so that a typo costs nothing. Offline (`HF_HUB_OFFLINE=1`), the Hub
    cache must hold the model; online, the Hub (`HF_ENDPOINT`) must answer and have it at `revision`.
    """
    from huggingface_hub import constants, try_to_load_from_cache

    from cie10 import hub

    path = path if path is not None else Path(name).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {name}: a file, not a model folder")
    if looks_like_path(name):
        raise ConfigError(f"{what} {name}: no such folder")
    if constants.HF_HUB_OFFLINE:
        if not isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str):
            raise ConfigError(f"{what} {name}: no such folder, and not in the Hub cache (HF_HUB_OFFLINE is set)")
        return
    try:
        hub.check_revision(name, "model", revision)
    except HubError as error:
        raise HubError(f"{what} {name}: no such folder, and {error}") from error


def load_base_model(factory: Any, base: BaseModelInfo, **kwargs: Any) -> Any:
    """`factory(base.load_path, **kwargs)` (SentenceTransformer, CrossEncoder), a failure as one clear error."""
    from cie10 import hub

    try:
        if Path(base.load_path).is_dir():
            return factory(base.load_path, **kwargs)
        with hub.hub_errors(base.load_path, "model"):
            return factory(base.load_path, **kwargs)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"cannot load the base model {base.name}: {reason}") from error


def _describe_local(name: str, path: Path) -> BaseModelInfo:
    """A local folder: our own training summary or the embedded build's provenance say where it came from."""
    summary = path / "run_summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text(encoding="utf-8"))
        base = data.get("base_model", {})
        return BaseModelInfo(
            name,
            str(path),
            base.get("hub_id"),
            base.get("license"),
            f"A cie10 {data.get('kind', 'model')} run ({data.get('run_name', path.name)}) fine-tuned from "
            f"{base.get('name')}: {base.get('description', '')}",
        )
    provenance = path / "provenance.json"
    if provenance.is_file():
        data = json.loads(provenance.read_text(encoding="utf-8"))
        return BaseModelInfo(
            name, str(path), data.get("original_model"), data.get("original_license"), data.get("description", "")
        )
    return BaseModelInfo(name, str(path), None, None, f"A local model folder ({path.name}).")


def transformer_of(model: Any) -> Any:
    """The `transformers` model inside a SentenceTransformer or a CrossEncoder."""
    from transformers import PreTrainedModel

    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            return module
    raise ConfigError(f"no transformers model inside {type(model).__name__}")


def _encoder_layers(hf_model: Any) -> Any:
    base = getattr(hf_model, "base_model", hf_model)
    encoder = getattr(base, "encoder", None)
    for owner in (encoder, base):
        for name in ("layer", "layers"):
            layers = getattr(owner, name, None) if owner is not None else None
            if layers is not None:
                return layers
    raise ConfigError(f"cannot find the transformer layers of {type(hf_model).__name__} to freeze")


def freeze_for_cpu(model: Any, *, freeze_embeddings: bool, freeze_layers: int = 0) -> dict[str, int]:
    """Freeze the word embeddings (and the embedding block plus the lowest `freeze_layers` layers).

    On CPU an AdamW step over e5-small's 96M embedding parameters costs more than the forward pass of a small
    batch; the frozen lower layers also skip their backward pass. Returns the parameter counts.
    """
    hf_model = transformer_of(model)
    if freeze_embeddings or freeze_layers:
        hf_model.get_input_embeddings().weight.requires_grad_(False)
    if freeze_layers:
        embeddings = getattr(getattr(hf_model, "base_model", hf_model), "embeddings", None)
        if embeddings is not None:
            embeddings.requires_grad_(False)
        layers = _encoder_layers(hf_model)
        if freeze_layers > len(layers):
            raise ConfigError(f"freeze_layers={freeze_layers} but the model has {len(layers)} layers")
        for layer in layers[:freeze_layers]:
            layer.requires_grad_(False)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("trainable parameters: %.1fM of %.1fM", trainable / 1e6, total / 1e6)
    return {"total_parameters": total, "trainable_parameters": trainable}


PROVENANCE_SECTION = "## Base model provenance"


def append_provenance(card_path: Path, base: BaseModelInfo, extra: str = "") -> None:
    """Add a section to the saved card saying exactly what the base model is and where it came from."""
    if not card_path.is_file():
        return
    text = card_path.read_text(encoding="utf-8")
    if PROVENANCE_SECTION in text:
        text = text[: text.index(PROVENANCE_SECTION)].rstrip() + "\n"
    lines = [
        "",
        PROVENANCE_SECTION,
        "",
        f"- **Base model given:** `{base.name}`",
        f"- **Which is:** {base.description}",
    ]
    if base.hub_id:
        lines.append(f"- **Hub model:** [{base.hub_id}](https://huggingface.co/{base.hub_id})")
    if base.license:
        lines.append(f"- **License:** {base.license}")
    if extra:
        lines.append(extra)
    card_path.write_text(text.rstrip() + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
