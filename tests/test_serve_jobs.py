"""The service's on-disk job queue, without a service: crash leftovers and one owner per folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zkml.errors import ConfigError
from zkml.serve.jobs import JobQueue, Job


def _job_on_disk(root, state: str) -> Job:
    job = Job(id="ab" * 16, circuit="c" * 20, samples=[[0.0]], reveal_input=None, state=state, attempts=1)
    (root / job.id).mkdir(parents=True)
    (root / job.id / "job.json").write_text(json.dumps(job.to_json()))
    return job


def test_crash_leftovers_removed_and_running_job_requeued(tmp_path):
    job = _job_on_disk(tmp_path, "running")
    half = tmp_path / job.id / ".bundle.json.x1y2z3.tmp"  # what a SIGKILL mid write_json_atomic leaves
    half.write_text('{"trunc')
    q = JobQueue(tmp_path, 4)
    try:
        assert not half.exists()
        assert q.recovered == {"requeued": 1, "done": 0, "failed": 0}
        assert list(q.waiting) == [job.id]
        assert json.loads((tmp_path / job.id / "job.json").read_text())["state"] == "queued"
    finally:
        q.close()


def test_second_owner_of_a_job_folder_is_refused(tmp_path):
    q = JobQueue(tmp_path, 4)
    try:
        with pytest.raises(ConfigError, match="in use by another running zkml serve"):
            JobQueue(tmp_path, 4)  # same process, second open file description: flock still conflicts
        other = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                                "from zkml.serve.jobs import JobQueue; JobQueue(Path(sys.argv[1]), 4)", str(tmp_path)],
                               capture_output=True, text=True)
        assert other.returncode != 0 and "in use by another running zkml serve" in other.stderr
    finally:
        q.close()
    JobQueue(tmp_path, 4).close()  # released: the folder can be taken again
