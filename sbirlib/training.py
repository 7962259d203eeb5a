"""The one training loop of the library: ``fit``, ``train_or_load``, checkpoints, ``History``.

A method supplies a ``step_fn`` (one optimisation step's loss) and a ``val_fn`` (metrics on the
**validation** split); :func:`fit` does the rest: device placement, AMP on CUDA, seeding,
progress bars, validation every epoch, best-on-validation selection, atomic checkpoints,
exact resume, a clear stop on a non-finite loss, and DistributedDataParallel under ``torchrun``.

Example::

    import torch
    from sbirlib import training
    from sbirlib.losses import triplet

    def step_fn(model, batch, device):
        s, p, n = (batch[k].to(device) for k in ("sketch", "positive", "negative"))
        loss = triplet.triplet_margin_loss(model(s), model(p), model(n), margin=0.3)
        return {"loss": loss}

    def val_fn(model):               # runs under torch.no_grad() with model.eval()
        return evaluate_fg(model, model, val_sketches, val_photos)   # {"acc@1": ..., ...}

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = training.train_or_load(
        model, train_loader, step_fn, optimizer=opt, epochs=10, val_fn=val_fn,
        output_dir=run_dir, config=cfg, checkpoint="auto")
    print(history)                    # loaded or trained, epochs, best epoch, wall time
    history.plot()                    # loss and validation curves

Conventions:

* ``step_fn(model, batch, device) -> dict`` returns a scalar tensor ``"loss"`` plus any other
  scalars to log. Under ``torchrun`` the ``model`` it receives is the DDP wrapper: call
  ``model(x)`` (its ``forward``) so that gradients are synchronised.
* Each epoch re-seeds Python, NumPy and torch from ``(seed, epoch)``; with ``DataLoader(shuffle=
  True)`` this makes an interrupted and resumed run identical to an uninterrupted one. Samplers
  and datasets with a ``set_epoch(epoch)`` method are told the epoch.
* ``output_dir`` receives ``last.pt`` (everything needed to resume, written after every epoch)
  and ``best.pt`` (the best-on-validation weights). Writes are atomic (temp file + rename) and
  loads use ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from sbirlib import distributed as dist_utils
from sbirlib.utils import get_device

__all__ = [
    "History",
    "NonFiniteLossError",
    "CheckpointError",
    "fit",
    "train_or_load",
    "save_checkpoint",
    "weights_cache_path",
    "load_checkpoint",
    "config_fingerprint",
    "unwrap_model",
]

StepFn = Callable[[nn.Module, Any, torch.device], Mapping[str, Any]]
ValFn = Callable[[nn.Module], Mapping[str, float]]


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read, or does not fit the model; the message says what to do."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class History:
    """What happened during training (or that the weights were loaded instead).

    Attributes:
        train: one dict per epoch with the mean of every scalar ``step_fn`` returned
            (``"loss"`` and any extras) and ``"lr"``.
        val: one dict per epoch with the validation metrics (empty without ``val_fn``).
        best_epoch: 1-based epoch whose weights were kept (the last one without ``val_fn``).
        best_score: the monitored validation metric at ``best_epoch`` (None without ``val_fn``).
        monitor / mode: what was monitored and whether higher (``"max"``) is better.
        epochs: epochs completed; wall_time_s: seconds spent training (summed over resumes).
        loaded: True when :func:`train_or_load` loaded the weights instead of training.
        resumed_from: epoch a resumed run continued after (0 for a fresh run).
        checkpoint: path of the checkpoint written or loaded, if any.
    """

    train: list[dict[str, float]] = dataclasses.field(default_factory=list)
    val: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    monitor: str = "acc@1"
    mode: str = "max"
    epochs: int = 0
    wall_time_s: float = 0.0
    loaded: bool = False
    resumed_from: int = 0
    checkpoint: str | None = None

    @property
    def train_loss(self) -> list[float]:
        """Mean training loss of each epoch."""
        return [row.get("loss", float("nan")) for row in self.train]

    def metric(self, name: str) -> list[float]:
        """Validation values of metric ``name`` per epoch."""
        return [row.get(name, float("nan")) for row in self.val]

    @property
    def best_val(self) -> dict[str, float]:
        """Validation metrics of the best epoch (empty without validation)."""
        if self.best_epoch is None or not self.val or self.best_epoch > len(self.val):
            return {}
        return dict(self.val[self.best_epoch - 1])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: copy.deepcopy(v) for k, v in data.items() if k in names})

    def plot(self, ax: Any = None, metrics: Iterable[str] | None = None) -> Any:
        """Loss and validation curves (see :func:`sbirlib.viz.plot_history`)."""
        from sbirlib.viz import plot_history

        return plot_history(self, metrics=metrics, axes=ax)

    def __repr__(self) -> str:
        how = "loaded from checkpoint" if self.loaded else "trained"
        if self.resumed_from:
            how += f" (resumed after epoch {self.resumed_from})"
        loss = self.train_loss
        parts = [f"History({how}, epochs={self.epochs}, wall_time={self.wall_time_s:.1f}s"]
        if loss:
            parts.append(f", loss {loss[0]:.4f} -> {loss[-1]:.4f}")
        if self.best_epoch is not None:
            parts.append(f", best_epoch={self.best_epoch}")
        if self.best_score is not None:
            parts.append(f", best val/{self.monitor}={self.best_score:.4f}")
        return "".join(parts) + ")"


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (tensors, state dicts, plain Python values) atomically with ``torch.save``.

    The file appears under its final name only once it is complete (temp file in the same
    folder, then ``os.replace``), so an interrupted write never corrupts an earlier checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(dict(state), tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` and restore what is given.

    ``model`` receives ``state["model"]`` (or the whole file if it is a bare state dict),
    ``optimizer`` / ``scheduler`` their saved states. Returns the loaded dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; train first or pass checkpoint='train'")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot load checkpoint {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}. "
            "It may be truncated or from an incompatible version; delete it (or pass "
            "checkpoint='train') to train again."
        ) from err
    if model is not None:
        weights = state["model"] if isinstance(state, dict) and "model" in state else state
        try:
            missing, unexpected = unwrap_model(model).load_state_dict(weights, strict=False)
        except (RuntimeError, TypeError, AttributeError) as err:  # shapes differ, or not a state dict
            raise CheckpointError(
                f"checkpoint {path} does not fit this model (its tensors have other shapes). It was "
                "written for a different architecture or config; delete it or pass checkpoint='train'."
            ) from err
        if strict and (missing or unexpected):
            example = (list(missing) + list(unexpected))[0]
            raise CheckpointError(
                f"checkpoint {path} does not fit this model ({len(missing)} missing and "
                f"{len(unexpected)} unexpected weights, e.g. {example!r}). It was written for a "
                "different architecture or config; delete it or pass checkpoint='train'."
            )
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    return state


def config_fingerprint(config: Mapping[str, Any] | None) -> str | None:
    """A short stable hash of a config, used to decide whether a checkpoint matches a run."""
    if config is None:
        return None
    text = json.dumps(dict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in unwrap_model(model).state_dict().items()}


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919) % (2**31 - 1)


def _seed_epoch(seed: int, epoch: int) -> None:
    s = _epoch_seed(seed, epoch)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def _set_epoch(loader: Any, epoch: int) -> None:
    for obj in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None),
                getattr(loader, "dataset", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
    inner = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    if inner is not None and hasattr(inner, "set_epoch"):
        inner.set_epoch(epoch)


def _is_better(score: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return score > best if mode == "max" else score < best


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    step_fn: StepFn,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    device: str | torch.device = "auto",
    scheduler: Any = None,
    val_fn: ValFn | None = None,
    monitor: str = "acc@1",
    mode: str = "max",
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    amp: bool = True,
    grad_clip: float | None = None,
    progress: bool = True,
    resume: bool = True,
    steps_per_epoch: int | None = None,
    scheduler_interval: str = "epoch",
    config: Mapping[str, Any] | None = None,
    ddp: bool = True,
    keep: str = "best",
) -> History:
    """Train ``model`` for ``epochs`` epochs and keep the best-on-validation weights.

    Args:
        model: the network (moved to ``device``; wrapped in DDP under ``torchrun``).
        train_loader: an iterable of batches (usually a ``DataLoader``).
        step_fn: ``step_fn(model, batch, device) -> {"loss": tensor, ...}``.
        optimizer: built on ``model``'s parameters.
        epochs: number of passes (each of ``steps_per_epoch`` batches if given).
        device: ``"auto"`` | ``"cpu"`` | ``"cuda"`` | a ``torch.device``.
        scheduler: stepped once per epoch (``scheduler_interval="epoch"``) or per step (``"step"``).
        val_fn: ``val_fn(model) -> {metric: value}`` on the validation split; run every epoch
            under ``torch.no_grad()`` with ``model.eval()``. Never pass a test-set function.
        monitor / mode: the metric of ``val_fn`` that selects the best epoch, and its direction.
        output_dir: where ``last.pt`` and ``best.pt`` go (nothing is written when None).
        seed: seeds each epoch from ``(seed, epoch)``.
        amp: mixed precision (float16 autocast + GradScaler) when running on CUDA; ignored on CPU.
        grad_clip: max global gradient norm (None = no clipping).
        progress: show ``tqdm.auto`` progress bars (main process only).
        resume: continue from ``output_dir/last.pt`` when it exists and its ``config`` matches.
        steps_per_epoch: stop each epoch after this many batches (for endless samplers).
        config: the run's settings; stored in checkpoints and compared on resume.
        ddp: under an initialised process group, wrap the model in DistributedDataParallel.
        keep: ``"best"`` (the best-on-validation epoch) or ``"last"`` (the final epoch, e.g.
            when the recipe says so; validation is then only logged).

    Returns:
        :class:`History`. ``model`` holds the best weights on return.

    Raises:
        NonFiniteLossError: the loss became NaN/inf. The model is reset to the last good
            weights and ``last.pt`` (the last completed epoch) is left untouched.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    dev = get_device(device)
    model.to(dev)
    is_main = dist_utils.is_main_process()
    world = dist_utils.world_size()
    out = Path(output_dir) if output_dir else None
    fingerprint = config_fingerprint(config)
    use_amp = bool(amp) and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    history = History(monitor=monitor, mode=mode)
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch = 0

    # -- resume ------------------------------------------------------------------------
    last_path = out / "last.pt" if out else None
    if resume and last_path is not None and last_path.is_file():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fingerprint:
            unwrap_model(model).load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler") is not None:
                scaler.load_state_dict(state["scaler"])
            history = History.from_dict(state["history"])
            best_state = state.get("best_model")
            start_epoch = int(state["epoch"])
            history.resumed_from = start_epoch
            if is_main:
                print(f"resuming from {last_path} after epoch {start_epoch}")
        elif is_main:
            print(f"{last_path} belongs to a different config; starting a fresh run")

    train_model = model
    if ddp and world > 1 and not isinstance(model, nn.parallel.DistributedDataParallel):
        train_model = dist_utils.wrap_ddp(model, dev)

    from tqdm.auto import tqdm

    epoch_bar = tqdm(range(start_epoch, epochs), desc="epochs", disable=not (progress and is_main),
                     initial=start_epoch, total=epochs, leave=True)
    last_good = _cpu_state(model)
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        _seed_epoch(seed + dist_utils.rank(), epoch)
        _set_epoch(train_loader, epoch)
        train_model.train()
        sums: dict[str, float] = {}
        n_steps = 0
        total = steps_per_epoch
        if total is None:
            with contextlib.suppress(TypeError):
                total = len(train_loader)  # type: ignore[arg-type]
        bar = tqdm(train_loader, total=total, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                   disable=not (progress and is_main))
        for batch in bar:
            if steps_per_epoch is not None and n_steps >= steps_per_epoch:
                break
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
                logs = step_fn(train_model, batch, dev)
            loss = logs["loss"]
            if dist_utils.any_true(not bool(torch.isfinite(loss.detach()).all())):
                unwrap_model(model).load_state_dict(last_good)
                where = f" ({last_path} keeps epoch {epoch})" if last_path is not None and last_path.is_file() else ""
                raise NonFiniteLossError(
                    f"non-finite training loss ({loss.item()}) at epoch {epoch + 1}, step {n_steps + 1}. "
                    f"Training stopped; the model holds the last good weights{where}. "
                    "Lower the learning rate, add grad_clip=..., or check the inputs for NaNs."
                )
            if scaler is not None:
                scaler.scale(loss).backward()
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            for key, value in logs.items():
                if isinstance(value, torch.Tensor):
                    if value.numel() != 1:
                        continue
                    value = value.detach().item()
                if isinstance(value, (int, float)):
                    sums[key] = sums.get(key, 0.0) + float(value)
            n_steps += 1
            if is_main and progress:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        if n_steps == 0:
            raise RuntimeError("the training loader produced no batches; check the dataset and batch size")
        row = {k: v / n_steps for k, v in sums.items()}
        row = dist_utils.average_scalars(row)
        row["lr"] = float(optimizer.param_groups[0]["lr"])
        row["steps"] = n_steps
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()

        # -- validation and selection -----------------------------------------------------
        improved = True
        if val_fn is not None:
            model.eval()
            with torch.no_grad():
                metrics = {k: float(v) for k, v in dict(val_fn(unwrap_model(model))).items()}
            model.train()
            if keep == "best" and monitor not in metrics:
                raise KeyError(f"val_fn returned {sorted(metrics)}, which lacks monitor={monitor!r}")
            history.val.append(metrics)
            if keep == "best":
                score = metrics[monitor]
                improved = not math.isnan(score) and _is_better(score, history.best_score, mode)
                if improved:
                    history.best_score = score
            else:
                history.best_score = metrics.get(monitor)
        if improved or best_state is None:
            history.best_epoch = epoch + 1
            best_state = _cpu_state(model)
        history.train.append(row)
        history.epochs = epoch + 1
        history.wall_time_s += time.perf_counter() - t0
        last_good = _cpu_state(model)
        postfix = {"loss": f"{row.get('loss', float('nan')):.4f}"}
        if history.val and monitor in history.val[-1]:  # keep="last" needs no monitored metric
            postfix[monitor] = f"{history.val[-1][monitor]:.3f}"
        epoch_bar.set_postfix(postfix)

        if out is not None and is_main:
            state = {
                "model": last_good,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch + 1,
                "history": history.to_dict(),
                "best_model": best_state,
                "fingerprint": fingerprint,
                "config": _plain(config),
            }
            if improved:
                save_checkpoint(out / "best.pt", {"model": best_state, "epoch": epoch + 1,
                                                  "fingerprint": fingerprint, "config": _plain(config),
                                                  "history": history.to_dict()})
            save_checkpoint(last_path, state)
        dist_utils.barrier()
    epoch_bar.close()

    if keep == "last":
        history.best_epoch = history.epochs  # the model already holds the final epoch's weights
    elif best_state is not None:
        unwrap_model(model).load_state_dict(best_state)
    if out is not None:
        history.checkpoint = str(out / "best.pt")
    return history


def _plain(config: Mapping[str, Any] | None) -> Any:
    """A weights_only-loadable copy of a config (JSON round trip)."""
    if config is None:
        return None
    return json.loads(json.dumps(dict(config), default=str))


# --------------------------------------------------------------------------------------
# train_or_load
# --------------------------------------------------------------------------------------
def train_or_load(
    model: nn.Module,
    train_loader: Iterable[Any],
    step_fn: StepFn,
    *,
    checkpoint: str | os.PathLike = "auto",
    output_dir: str | os.PathLike | None = None,
    config: Mapping[str, Any] | None = None,
    **fit_kwargs: Any,
) -> History:
    """Load a matching checkpoint if there is one, else train with :func:`fit`.

    Args:
        checkpoint: ``"auto"`` -- load trained weights of the same ``config`` (fingerprint)
            if there are any, else train; ``"train"`` -- always train; a path -- load that
            file (it must exist and fit the model). ``"auto"`` looks in ``output_dir`` and
            then in the shared store :func:`weights_cache_path` under ``$SBIR_CACHE``, so a
            chapter re-run after a kernel restart (which gets a fresh run folder) reuses its
            training.
        output_dir: run folder for ``checkpoint.pt`` (the final best weights + history) and
            :func:`fit`'s ``last.pt`` / ``best.pt``.
        config: the run's settings; part of what makes a checkpoint "matching".
        **fit_kwargs: passed to :func:`fit` (``optimizer``, ``epochs``, ``val_fn``, ...).

    Returns:
        :class:`History` (``loaded=True`` when nothing was trained).
    """
    fingerprint = config_fingerprint(config)
    if checkpoint not in ("auto", "train", "", None):
        path = Path(checkpoint)
        state = load_checkpoint(path, model, map_location="cpu")
        return _loaded_history(state, path, fit_kwargs)
    out = Path(output_dir) if output_dir else None
    final = out / "checkpoint.pt" if out else None
    shared = weights_cache_path(model, fingerprint) if fingerprint is not None else None
    if checkpoint == "auto":
        for candidate in (final, shared):
            if candidate is None or not candidate.is_file():
                continue
            state = torch.load(candidate, map_location="cpu", weights_only=True)
            if state.get("fingerprint") != fingerprint:
                if dist_utils.is_main_process():
                    print(f"{candidate} was written for a different config; not used")
                continue
            load_checkpoint(candidate, model, map_location="cpu")
            if dist_utils.is_main_process():
                print(f"loaded trained weights from {candidate}")
                if final is not None and candidate != final:
                    _place(candidate, final)  # the run folder stays self-contained
            return _loaded_history(state, final if final is not None else candidate, fit_kwargs)
    resume = bool(fit_kwargs.pop("resume", True)) and checkpoint == "auto"
    history = fit(model, train_loader, step_fn, output_dir=out, config=config, resume=resume,
                  **fit_kwargs)
    if dist_utils.is_main_process() and (final is not None or shared is not None):
        state = {"model": _cpu_state(model), "history": history.to_dict(),
                 "fingerprint": fingerprint, "config": _plain(config)}
        written = save_checkpoint(final if final is not None else shared, state)
        if shared is not None and written != shared:
            _place(written, shared)
        history.checkpoint = str(written)
    return history


def weights_cache_path(model: nn.Module, fingerprint: str) -> Path:
    """Where :func:`train_or_load` keeps the trained weights of one config, across runs.

    ``$SBIR_CACHE/checkpoints/<ModelClass>-<config fingerprint>-<code digest>/checkpoint.pt``:
    the same model class, config and library source find the same weights; any change to one
    of them trains afresh (see :func:`sbirlib.utils.code_digest`).
    """
    from sbirlib.utils import cache_dir, code_digest

    name = f"{type(unwrap_model(model)).__name__}-{fingerprint}-{code_digest()}"
    return cache_dir("checkpoints") / name / "checkpoint.pt"


def _place(src: Path, dst: Path) -> None:
    """Put a copy of checkpoint ``src`` at ``dst``: a hard link where possible, else a copy."""
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _loaded_history(state: Mapping[str, Any], path: Path, fit_kwargs: Mapping[str, Any]) -> History:
    if isinstance(state, Mapping) and "history" in state:
        history = History.from_dict(state["history"])
    else:
        history = History(monitor=fit_kwargs.get("monitor", "acc@1"), mode=fit_kwargs.get("mode", "max"))
    history.loaded = True
    history.checkpoint = str(path)
    return history
