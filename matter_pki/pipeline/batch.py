"""The records of one Lambda invocation, run concurrently on the container's worker threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from matter_pki.errors import InputError, MatterPkiError
from matter_pki.pipeline.core import Deadline, Outcome, Pipeline
from matter_pki.pipeline.events import parse_s3_event

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from concurrent.futures import Future


class Runner:
    """A ``Pipeline`` with the container's thread pool: starts batches, answers messages."""

    def __init__(self, pipeline: Pipeline, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.pipeline = pipeline
        self.monotonic = monotonic
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        # pca, store, config, log: the pipeline's (tests and the handler read them here).
        return getattr(self.pipeline, name)

    def handle_message(self, body: str, *, request_id: str, deadline: Deadline | None = None) -> list[Outcome]:
        """Every object of one SQS message (an S3 event); raises to send the message back to SQS."""
        log = self.pipeline.log
        try:
            refs = parse_s3_event(body)
        except InputError as e:
            log.error(
                "unreadable message; it will go to the DLQ after its retries",
                extra={"code": e.code, "error": e.message, "operator_action": True},
            )
            raise
        if not refs:
            log.info("skipped: s3:TestEvent", extra={"request_id": request_id})
        dl = deadline or Deadline(None, self.monotonic)
        return [self.pipeline.handle_object(ref, request_id=request_id, deadline=dl) for ref in refs]

    def start(
        self,
        records: Sequence[Mapping[str, object]],
        *,
        request_id: str,
        remaining_ms: Callable[[], int] | None = None,
    ) -> Batch:
        """Start every SQS record of a batch (``workers`` at a time); ``Batch.finish`` collects each one.

        Every record must be given back ``deadline_margin_ms`` before the Lambda timeout: a record
        still waiting then fails (``pipeline.deadline``) and SQS redelivers it, instead of the whole
        invocation being killed.
        """
        at = None
        if remaining_ms is not None:
            at = self.monotonic() + (remaining_ms() - self.pipeline.config.deadline_margin_ms) / 1000.0
        return Batch(self, records, request_id=request_id, deadline=Deadline(at, self.monotonic))

    def executor(self) -> ThreadPoolExecutor | None:
        """The container's worker threads (None when ``workers`` is 1)."""
        if self.pipeline.config.workers <= 1:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.pipeline.config.workers, thread_name_prefix="dac-signer")
            return self._pool


class Batch:
    """The records of one Lambda invocation, running concurrently; ``finish`` is the record handler."""

    def __init__(
        self,
        runner: Runner,
        records: Sequence[Mapping[str, object]],
        *,
        request_id: str,
        deadline: Deadline,
    ) -> None:
        self.runner = runner
        self.request_id = request_id
        self.deadline = deadline
        self._futures: dict[str, list[Future[list[Outcome]]]] = {}
        pool = runner.executor()
        if pool is not None:
            for record in records:
                self._futures.setdefault(_message_id(record), []).append(pool.submit(self._run, record))

    def _run(self, record: Mapping[str, object]) -> list[Outcome]:
        try:
            return self.runner.handle_message(
                str(record.get("body", "")), request_id=self.request_id, deadline=self.deadline
            )
        except MatterPkiError:
            raise  # already logged with its code
        except Exception:
            # Powertools does not log record failures; a bug must not vanish into a retry loop.
            self.runner.pipeline.log.error(
                "unexpected error; the message goes back to SQS",
                extra={"message_id": _message_id(record), "request_id": self.request_id, "operator_action": True},
                exc_info=True,
            )
            raise

    def finish(self, record: Mapping[str, object]) -> list[Outcome]:
        """Outcomes of one record; raises (failing only this record) on transient or operator errors."""
        pending = self._futures.get(_message_id(record))
        return pending.pop(0).result() if pending else self._run(record)


def _message_id(record: Mapping[str, object]) -> str:
    return str(record.get("messageId", id(record)))
