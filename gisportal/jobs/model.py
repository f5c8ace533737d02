"""What a background job is: its kinds, states, stages and the `Job` record.

Kept free of heavy imports (no numpy, GDAL or pandas): the worker process imports this
package before it sets up its signal mask, and the web process reads job rows on every
progress poll.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "KINDS",
    "STATES",
    "FINAL_STATES",
    "STAGES",
    "LABELS",
    "Job",
    "utc_now",
]

#: Kinds of job. ``check`` validates an upload and stores nothing; ``ingest`` stores it
#: as a draft version (and publishes it when asked and clean); ``repair`` is an ingest
#: with geometry repair of an earlier job's upload; ``publish`` and ``rollback`` publish
#: a stored version (tiles first).
KINDS: tuple[str, ...] = ("check", "ingest", "repair", "publish", "rollback")

#: ``queued`` → ``running`` → one of the final states.
STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})

#: Progress stages in the order a job passes them, with the percentage shown on
#: entering each. Stages are coarse on purpose: the pipeline reports named steps, not
#: fractions, and a bar that moves by honest steps beats one that guesses.
STAGES: dict[str, int] = {
    "queued": 0,
    "starting": 2,
    "read": 5,
    "normalise": 20,
    "repair": 30,
    "validate": 35,
    "store": 60,
    "report": 75,
    "compare": 77,
    "tiles": 80,
    "publish": 95,
    "done": 100,
}

#: UI strings for states and stages, (Vietnamese, English), keyed as the web layer's
#: string table wants them: ``i18n.add_strings(jobs.LABELS)``.
LABELS: dict[str, tuple[str, str]] = {
    "job_state_queued": ("Đang chờ", "Queued"),
    "job_state_running": ("Đang chạy", "Running"),
    "job_state_done": ("Hoàn tất", "Done"),
    "job_state_failed": ("Thất bại", "Failed"),
    "job_state_cancelled": ("Đã hủy", "Cancelled"),
    "job_stage_queued": ("Đang chờ đến lượt", "Waiting for a free worker"),
    "job_stage_starting": ("Đang khởi động", "Starting"),
    "job_stage_read": ("Đang đọc tệp", "Reading the file"),
    "job_stage_normalise": ("Đang chuẩn hóa (hệ tọa độ, bảng mã, trường)",
                            "Normalising (CRS, encoding, fields)"),
    "job_stage_repair": ("Đang sửa lỗi hình học", "Repairing geometry"),
    "job_stage_validate": ("Đang kiểm tra dữ liệu", "Validating"),
    "job_stage_store": ("Đang lưu phiên bản", "Storing the version"),
    "job_stage_report": ("Đang lập báo cáo kiểm tra", "Writing the validation report"),
    "job_stage_compare": ("Đang so sánh với phiên bản đang công bố",
                          "Comparing with the published version"),
    "job_stage_tiles": ("Đang dựng ô bản đồ", "Building map tiles"),
    "job_stage_publish": ("Đang công bố", "Publishing"),
    "job_stage_done": ("Hoàn tất", "Done"),
}


def utc_now() -> str:
    """Now as ISO 8601 UTC with seconds, as the store writes its timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Job:
    """One background job as its row in the ``jobs`` table says.

    Attributes
    ----------
    id
        Increasing job number; also the name of its folder ``uploads/<id>/``.
    kind
        One of `KINDS`.
    district, layer
        The district code and layer kind (``parcels``, ``plan``, ``boundary``) concerned.
    params
        What the job was asked to do (JSON): the upload's path relative to the data home
        and its original name, crs/encoding/layer/field overrides, ``repair``,
        ``publish``, the version to publish...
    state
        One of `STATES`.
    stage, percent, message
        Progress: the current stage (a key of `STAGES`), 0–100, and a short detail.
    result
        For a finished job: version id, validation summary, report paths (relative to
        the data home), the version it replaced...
    error
        For a failed job: a `GisportalError`'s ``code/what/where/fix/message``, or for
        a bug the exception and the last lines of its traceback.
    pid
        The worker process (also its process group), while running.
    actor
        The user who asked for the job.
    cancel_requested_at
        When someone asked to cancel it (the worker may still be finishing).
    limits
        The limits it runs under (``memory_mb``, ``timeout_seconds``; 0: none), from the
        settings it was submitted with; None for a row from before they were recorded.
    node, runner
        The node (setting ``node_name``, default the host name) whose process runs the
        job, and how it was started: ``spawn`` (by a web node's `dispatch`) or
        ``worker`` (claimed by a ``gisportal worker``); None before the first claim and
        again after a re-queue.
    attempt
        How many times the job was claimed: 1 for the first run; a job re-queued after
        its node stopped sending heartbeats keeps it, so the next claim makes it 2.
    claimed_at, heartbeat_at
        When the current run claimed the job, and its worker's last sign of life.
    """

    id: int
    kind: str
    district: str
    layer: str
    state: str
    stage: str
    percent: int
    message: str
    actor: str
    created_at: str
    updated_at: str
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    pid: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    cancel_requested_at: str | None = None
    limits: dict[str, Any] | None = None
    node: str | None = None
    runner: str | None = None
    attempt: int = 0
    claimed_at: str | None = None
    heartbeat_at: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job has reached a final state (done, failed or cancelled)."""
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON for an API answer or a progress poll.

        Without the node and pid running it: which server runs a job is no business of a
        page any planner can open (as paths are not, issue 11); the administrator finds
        them in the row, the job's log and ``gisportal worker``'s output."""
        return {
            "id": self.id, "kind": self.kind, "district": self.district,
            "layer": self.layer, "state": self.state, "stage": self.stage,
            "percent": self.percent, "message": self.message, "actor": self.actor,
            "params": self.params, "result": self.result, "error": self.error,
            "created_at": self.created_at, "started_at": self.started_at,
            "updated_at": self.updated_at, "finished_at": self.finished_at,
            "cancel_requested_at": self.cancel_requested_at, "limits": self.limits,
            "attempt": self.attempt, "heartbeat_at": self.heartbeat_at,
        }
