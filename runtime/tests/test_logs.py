from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from loyalty_runtime.logs import JsonFormatter


def test_log_lines_are_json_with_service_fields_and_trace_id():
    formatter = JsonFormatter("points")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        record = logging.makeLogRecord({"msg": "applied %d", "args": (3,), "levelname": "INFO", "name": "x"})
        record.__dict__["batch"] = 500
        line = json.loads(formatter.format(record))
    assert line["msg"] == "applied 3"
    assert line["service"] == "points"
    assert line["level"] == "info"
    assert line["batch"] == 500
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
