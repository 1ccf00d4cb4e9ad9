"""Driver side of a feature stage: the cache file of one (dataset, extractor), resumable."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from dask.distributed import Client, Future

from pipeline.cache import CacheWriter
from pipeline.cache.writer import cached_sources
from pipeline.config import config_hash
from pipeline.engine.cached import VideoJob, pending_tasks, run_into_cache, task_groups
from pipeline.engine.cluster import ClusterConfig, dask_client
from pipeline.engine.dask_map import VideoTask
from pipeline.engine.shipping import call_with_files, scatter_files
from pipeline.engine.summary import StageSummary
from pipeline.errors import ConfigError
from pipeline.extractors.catalog import CARDS, card_of, recorded_weights
from pipeline.features.config import (
    GZIP_LEVEL,
    ExtractorIdentity,
    ExtractorSpec,
    check_runnable,
    feature_cache_config,
    recorded_config,
)
from pipeline.features.inputs import input_arrays, recorded_identity
from pipeline.features.tasks import extract_group, worker_identity
from pipeline.manifests.format import Manifest


def extractor_identity(client: Client, spec: ExtractorSpec,
                       files: dict[str, Future] | None = None) -> ExtractorIdentity:
    """The weights and code versions of `spec`'s extractor, as the workers have it. Every worker builds
    its extractor now, as its first task would have, so a
    wrong checkpoint fails before any video is read, and the driver never imports or builds the network
    (seconds during which the workers would sit idle, bench/README.md, deliverable 3). Workers that
    disagree (machines of an external cluster holding different files at the checkpoint's path) are an
    error. `files`: the scattered weights, when workers do not share the driver's file system."""
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    if files is None:
        call, args, kwargs = worker_identity, (spec,), {}
    else:   # no shared file system: the weights were shipped (engine.shipping)
        call, args, kwargs = partial(call_with_files, worker_identity), (files,), {"spec": spec}
    futures = [client.submit(call, *args, **kwargs, workers=[w], allow_other_workers=False, pure=False)
               for w in workers] or [client.submit(call, *args, **kwargs, pure=False)]
    return agreed_identity(spec, client.gather(futures))


def agreed_identity(spec: ExtractorSpec, found: list[ExtractorIdentity]) -> ExtractorIdentity:
    """The one identity every worker reported, or ConfigError naming what differs."""
    weights = sorted({f.weights for f in found})
    if len(weights) != 1:
        raise ConfigError(f"{spec.name}: the workers loaded different weights from {spec.weights} "
                           f"(sha256 {weights}); give every worker the same checkpoint")
    codes = sorted({f.code for f in found})
    if len(codes) != 1:
        raise ConfigError(f"{spec.name}: the workers run different versions of the extractor's code "
                           f"({codes}); install the same release of vemo on every worker")
    return found[0]


def shipped_arrays(name: str, sources: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Per source cache path, the arrays the extractor's input loader reads (what a worker without the
    shared file system is sent)."""
    kind = card_of(name).input_kind
    return {sources[source]: prefixes for source, prefixes in input_arrays(kind).items() if source in sources}


def local_identity(spec: ExtractorSpec) -> ExtractorIdentity:
    """The identity a LocalCluster's workers would report for `spec` (same code, same files: they run on
    this machine from this interpreter), without building the network: a built-in's card
    (`features.catalog`, no torch import) or a plugin's class, and the weights file's sha256."""
    card = CARDS.get(spec.name)
    try:
        if card is not None:
            weights = recorded_weights(spec.name, spec.weights, weighted=card.weighted)
            return recorded_identity(card.version, card.input_kind, weights)
        cls = _extractor_class(spec.name)
        return recorded_identity(cls.version, cls.input_kind, cls.recorded_weights(spec.weights))
    except FileNotFoundError as exc:
        raise ConfigError(f"features.{spec.name}: {exc}") from None


def _extractor_class(name: str) -> type:
    """A plugin extractor's class (its module imports torch)."""
    from pipeline.extractors.base import get_extractor

    return get_extractor(name)


def run_features(*, spec: ExtractorSpec, manifest: Manifest, root: str | Path, sources: dict[str, str],
                 upstream: dict[str, str], cache_path: Path, reports_dir: Path,
                 cluster: ClusterConfig) -> StageSummary:
    """`upstream` maps each source cache to its configuration hash, so new inputs mean new features.
    Workers take `spec.videos_per_task` videos per task and batch across them (`compute.extract_group`).
    With a LocalCluster, the videos still missing are known before any worker starts (`local_identity`):
    none missing, no cluster (building the network on every worker took 2-10 s, bench/README.md,
    section 9); a few, no more workers than their tasks."""
    check_runnable(spec, external=cluster.external)
    weights_files = [] if spec.weights in ("random", "none") else [spec.weights]
    job = VideoJob(f"feat@{spec.name}", extract_group,
                   {"spec": spec, "sources": sources, "gzip_level": GZIP_LEVEL},
                   videos_per_task=spec.videos_per_task, release=list(sources.values()),
                   files=weights_files, arrays=shipped_arrays(spec.name, sources))
    tasks = listed = None
    if not cluster.external:
        identity = listed = local_identity(spec)
        done = cached_sources(cache_path, config_hash(feature_cache_config(spec, identity, upstream)))
        tasks = pending_tasks(manifest, root, done)
    if tasks == []:
        summary = _into_cache(job, spec, identity, upstream, manifest=manifest, root=root,
                              cache_path=cache_path, cluster=cluster, client=None, tasks=tasks)
    else:
        groups = None if tasks is None else task_groups(len(tasks), spec.videos_per_task)
        with dask_client(cluster, tasks=groups) as client:
            try:
                files = None if cluster.shared_filesystem else scatter_files(client, weights_files)
                identity = extractor_identity(client, spec, files)
            except (TypeError, ValueError, FileNotFoundError) as exc:
                # the workers could not build the extractor with these options or weights: a setting
                raise ConfigError(f"features.{spec.name}: {exc}") from None
            if identity != listed:
                tasks = None     # listed for another extractor than the workers built: list them again
            summary = _into_cache(job, spec, identity, upstream, manifest=manifest, root=root,
                                  cache_path=cache_path, cluster=cluster, client=client, tasks=tasks)
    if identity.weights == "random":
        print(f"[feat@{spec.name}] NOTE: features computed from RANDOM weights (no checkpoint given); "
              "they are marked as such in the cache and in every report", flush=True)
    stem = reports_dir / f"feat_{spec.name}"
    summary.write(stem.with_name(stem.name + "_summary.json"), stem.with_name(stem.name + "_failures.csv"))
    return summary


def _into_cache(job: VideoJob, spec: ExtractorSpec, identity: ExtractorIdentity, upstream: dict[str, str], *,
                manifest: Manifest, root: str | Path, cache_path: Path, cluster: ClusterConfig,
                client: Client | None, tasks: list[VideoTask] | None) -> StageSummary:
    """The cache of `spec` made by the extractor `identity` names: the videos still missing (`tasks`, or
    those the cache lacks) computed on `client`, or on a cluster started if need be."""
    values = feature_cache_config(spec, identity, upstream)
    with CacheWriter(cache_path, stage=job.stage, config=recorded_config(spec, values),
                     config_hash=config_hash(values), weights=identity.weights, compression="gzip",
                     level=GZIP_LEVEL) as writer:
        return run_into_cache(job, manifest=manifest, root=root, writer=writer, cluster=cluster,
                              client=client, tasks=tasks)
