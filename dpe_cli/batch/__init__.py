"""``dpe batch``: many editing jobs in one process per worker, resumable, sharded over workers.

    from dpe_cli.batch import read_manifest, run_batch, shard_from
    summary = run_batch(read_manifest("jobs.jsonl", {}), Path("results"), shard_from(None))
"""

from dpe_cli.batch.manifest import Job, ManifestError, folder_jobs, read_manifest
from dpe_cli.batch.results import Status, batch_status
from dpe_cli.batch.runner import BatchSummary, run_batch
from dpe_cli.batch.shard import Shard, shard_from

__all__ = [
    "BatchSummary",
    "Job",
    "ManifestError",
    "Shard",
    "Status",
    "batch_status",
    "folder_jobs",
    "read_manifest",
    "run_batch",
    "shard_from",
]
