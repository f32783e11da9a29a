"""SQS-triggered DAC signer: S3 ``<PAI ARN>/<PID>/<name>.csr`` → ``<name>.pem`` (DAC) or ``<name>.err``.

Thin by design: the logic lives in ``matter_pki.pipeline``. Records of a batch run concurrently
(``MATTER_WORKERS``); a refusal of the request writes ``.err`` and succeeds; records that failed
transiently, or on a quota, set-up or configuration error, are reported in ``batchItemFailures``
(``ReportBatchItemFailures`` on the event source mapping) and reach the DLQ after their receives.
Every record is given back before the timeout (``remaining_ms``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from matter_pki import pipeline

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "dac-signer"))
processor = BatchProcessor(event_type=EventType.SQS)

if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # Clients and configuration once per container, during init (tests call pipeline.configure()).
    pipeline.runtime(logger=logger)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Sign every CSR the batch names; return the records SQS must deliver again."""
    batch = pipeline.runtime(logger=logger).start(
        event.get("Records", []),
        request_id=context.aws_request_id,
        remaining_ms=context.get_remaining_time_in_millis,
    )
    return process_partial_response(
        event=event, record_handler=batch.finish, processor=processor, context=context
    )
