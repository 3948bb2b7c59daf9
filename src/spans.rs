//! OpenTelemetry traces: one span per request, continuing the caller's W3C
//! `traceparent`, with what was decided as attributes (decision, mode, client,
//! audience, error code; never a token), exported over OTLP/HTTP when
//! `[telemetry] otlp_endpoint` is set. Store, key fetch and Shared Signals work open
//! child spans where they run (`revocation_store`, `jwks_fetch`, `ssf_push`,
//! `ssf_poll`).
//!
//! Spans are plain `tracing` spans: without an endpoint nothing is exported, and the
//! text and JSON logs leave the spans of [`TARGET`] out, so log lines read the same
//! either way.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::audit::AuditEvent;
use crate::config::TelemetryConfig;

/// The target of the spans made for traces, which the logs leave out.
pub(crate) const TARGET: &str = "mcp_sts::trace";

tokio::task_local! {
    /// The span of the request being answered, for the endpoints to record their
    /// decision on whatever span they run in.
    static REQUEST: Span;
}

/// Run `answer` with `span` as the request span [`record_outcome`] writes to.
pub(crate) async fn within<F: std::future::Future>(span: Span, answer: F) -> F::Output {
    REQUEST.scope(span, answer).await
}

/// The span of one HTTP request to `route`, child of the caller's `traceparent` when it
/// sent a valid one. The outcome fields are filled in by [`record_outcome`].
pub(crate) fn request_span(method: &str, route: &str, traceparent: Option<&str>) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
        mcp_sts.event = Empty,
        mcp_sts.decision = Empty,
        mcp_sts.mode = Empty,
        mcp_sts.client_id = Empty,
        mcp_sts.audience = Empty,
        error.type = Empty,
    );
    if let Some(traceparent) = traceparent {
        let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        if parent.span().span_context().is_valid() {
            // Only fails when no OpenTelemetry layer is installed: nothing to continue then.
            let _ = span.set_parent(parent);
        }
    }
    span
}

/// Put the decision of `audit` on the request span: `allow` or the error code.
pub(crate) fn record_outcome(audit: &AuditEvent, outcome: &str) {
    let span = REQUEST.try_with(Span::clone).unwrap_or_else(|_| Span::current());
    span.record("mcp_sts.event", audit.event);
    span.record("mcp_sts.decision", if outcome == "allow" { "allow" } else { "deny" });
    if outcome != "allow" {
        span.record("error.type", outcome);
    }
    if let Some(mode) = audit.mode {
        span.record("mcp_sts.mode", mode);
    }
    if let Some(client) = &audit.client_id {
        span.record("mcp_sts.client_id", client.as_str());
    }
    if let Some(audience) = &audit.audience {
        span.record("mcp_sts.audience", audience.as_str());
    }
}

/// The trace id of the current span (32 hex digits), when it belongs to a trace
/// OpenTelemetry records: a token minted without a `traceparent` takes it as `txn`, so
/// its `txn` still finds the exported trace.
pub(crate) fn current_trace_id() -> Option<String> {
    let context = Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("telemetry.otlp_endpoint: cannot set up the OTLP exporter ({0})")]
pub struct ExporterError(String);

/// The tracer provider exporting to `config.otlp_endpoint` in batches over OTLP/HTTP
/// (protobuf); `None` when no endpoint is set.
pub(crate) fn provider(config: &TelemetryConfig) -> Result<Option<SdkTracerProvider>, ExporterError> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| ExporterError(e.to_string()))?;
    let name = config.service_name.clone().unwrap_or_else(|| "mcp-sts".to_owned());
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(name).build())
            .build(),
    ))
}

/// The `tracing` layer feeding `provider`.
pub(crate) fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("mcp-sts"))
}
