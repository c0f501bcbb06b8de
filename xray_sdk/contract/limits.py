"""Size and count limits, shared by the SDK (which applies them before queueing) and the
server (which enforces them again, because not every client is our SDK)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Every bound X-Ray puts on what it stores in the hot tier or accepts on the wire."""

    # Wire
    max_body_bytes: int = 5 * 1024 * 1024
    max_events_per_batch: int = 1000
    max_json_depth: int = 32

    # Identity and labels
    max_name_chars: int = 200
    # A step type none of the fixed ones, sent back as `declared_type` with the step stored as custom.
    max_declared_type_chars: int = 64
    max_tags: int = 32
    max_tag_key_chars: int = 64
    max_tag_value_chars: int = 256
    max_metadata_bytes: int = 8 * 1024

    # Step content (hot tier): over-long values are truncated with a visible marker
    max_why_chars: int = 2000
    max_summary_bytes: int = 8 * 1024
    max_error_message_chars: int = 4000
    max_error_stack_chars: int = 16000
    max_metrics: int = 64
    max_metric_key_chars: int = 64
    max_metric_text_chars: int = 256
    max_seq: int = 2**31 - 1
    max_count: int = 2**53

    # Candidate decisions: counts per rejection reason are metrics (hot tier); samples are artifacts
    max_reasons: int = 16
    max_reason_chars: int = 64
    kept_sample_size: int = 20
    rejected_sample_per_reason: int = 5

    # Artifacts (cold tier)
    max_artifacts_per_step: int = 16
    max_artifact_payload_bytes: int = 1024 * 1024

    # Clock: events far from the server's clock are refused rather than misfiled in time
    max_event_age_days: int = 366
    max_clock_skew_seconds: int = 24 * 3600

    # Queries
    default_page_size: int = 100
    max_page_size: int = 1000


DEFAULT_LIMITS = Limits()

# Appended where text was cut, so a reader can always tell a value was shortened.
TRUNCATION_MARKER = "…[truncated {dropped} chars]"
