"""dlt's local state of each warehouse: where it lives, the links dlt's own CLI follows, and what
is removed so that it stays bounded.

Under dlt's data dir (`DLT_DATA_DIR`, default `~/.dlt`):

    trigg/<warehouse key>/             one folder per warehouse: two warehouses never share state
        warehouse                      which warehouse it is (type and location, never a secret)
        run.lock                       one run per warehouse at a time
        scratch/                       the fast path's files, during a run
        trigg_customers/               dlt's working folder of the pipeline
        trigg_customers_runs/          ... and of the run-history pipeline
    pipelines/trigg_customers       -> ../trigg/<key>/trigg_customers       (the warehouse last run)
    pipelines/trigg_customers_runs  -> ../trigg/<key>/trigg_customers_runs

dlt's CLI knows only the data dir and a pipeline name, so `dlt pipeline trigg_customers info`
(or `trace`) looks in `pipelines/trigg_customers`: a link to the folder of the warehouse run last,
replaced atomically at the start of every run (a new link renamed over the old one).

Earlier versions kept the warehouse's folder at `pipelines/trigg/<key>/`: the first run that meets
one moves it whole, with one rename under its run lock, so pending packages are kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Sequence
from typing import IO

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.common.runtime import run_context

from pipelines.destinations import Warehouse
from pipelines.trigg.errors import RunInProgress
from pipelines.trigg.events import event

STATE_FOLDER = "trigg"
"""The folder of trigg's per-warehouse folders, in dlt's data dir."""
LOCK_FILE = "run.lock"


def warehouse_dir(warehouse: Warehouse) -> str:
    """The local folder of `warehouse`: dlt's working folders, the run lock, the scratch files."""
    return os.path.join(run_context.active().get_data_entity(STATE_FOLDER), warehouse.key)


def _old_warehouse_dir(warehouse: Warehouse) -> str:
    return os.path.join(get_dlt_pipelines_dir(), STATE_FOLDER, warehouse.key)


def lock_or_refuse(lock: IO[str], warehouse: Warehouse) -> None:
    """Take the run lock of `warehouse` on the open file `lock`, or refuse: another run holds it.
    The OS drops the lock when its process dies (kill -9)."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunInProgress(
            f"another run is in progress for {warehouse}; this one did nothing"
        ) from None


def move_old_layout(warehouse: Warehouse) -> None:
    """Move the folder an earlier version kept under `pipelines/trigg/` to `warehouse_dir`.

    The rename happens under the old folder's run lock (a run of the old version in progress
    makes this one stop, as any overlapping run), and keeps everything, pending packages too. A
    process that still holds the old lock file holds the moved one: the lock stays one."""
    old, new = _old_warehouse_dir(warehouse), warehouse_dir(warehouse)
    if not os.path.isdir(old) or os.path.exists(new):
        return
    try:
        lock = open(os.path.join(old, LOCK_FILE), "a")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return  # another run moved it just now
    with lock:
        lock_or_refuse(lock, warehouse)
        if os.path.isdir(old) and not os.path.exists(new):
            os.makedirs(os.path.dirname(new), exist_ok=True)
            os.rename(old, new)
            event("local_state", f"moved dlt's local state of {warehouse} to {new}", folder=new)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(old))  # `pipelines/trigg`, once it is empty


def describe(warehouse: Warehouse) -> None:
    """Name the warehouse inside its folder, for a person looking at the data dir."""
    folder = warehouse_dir(warehouse)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "warehouse"), "w") as label:
        label.write(f"{warehouse}\n")


def link_for_dlt_cli(warehouse: Warehouse, pipeline_names: Sequence[str]) -> list[str]:
    """Point `pipelines/<name>` at this warehouse's working folder of each pipeline; returns
    warnings for a name taken by a folder that is not such a link (someone's own pipeline: left
    alone)."""
    pipelines_dir = get_dlt_pipelines_dir()
    os.makedirs(pipelines_dir, exist_ok=True)
    warnings: list[str] = []
    for name in pipeline_names:
        link = os.path.join(pipelines_dir, name)
        if os.path.lexists(link) and not os.path.islink(link):
            warnings.append(
                f"{link} is a folder trigg does not manage, so dlt's CLI shows that pipeline, not"
                f" the one of {warehouse} (in {warehouse_dir(warehouse)})"
            )
            continue
        target = os.path.relpath(os.path.join(warehouse_dir(warehouse), name), pipelines_dir)
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        temporary = os.path.join(pipelines_dir, f".{name}.{os.getpid()}.link")
        try:
            if os.path.lexists(temporary):
                os.remove(temporary)
            os.symlink(target, temporary)
            os.replace(temporary, link)
        except OSError as failure:  # a file system without links: the run itself is unharmed
            warnings.append(f"could not link {link} for dlt's CLI ({failure.strerror})")
    return warnings


def forget_loaded_packages(pipeline: dlt.Pipeline) -> None:
    """Remove the load packages dlt keeps after loading them: they are in the warehouse now, and
    kept they grow the folder by the size of every load. A package with failed jobs stays, for
    `dlt pipeline ... failed-jobs`."""
    for load_id in pipeline.list_completed_load_packages():
        package = pipeline.get_load_package_info(load_id)
        if package.jobs.get("failed_jobs"):
            continue
        shutil.rmtree(package.package_path, ignore_errors=True)
