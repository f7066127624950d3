//! Logs to stderr, one JSON object a line in the shape hashicorp/go-hclog
//! writes (`@level`, `@message`, `@module`, `@timestamp`, then fields).
//! go-plugin parses such lines from a plugin's stderr and re-logs them at
//! their own level, so `TF_LOG=debug terraform plan` shows our debug lines
//! and nothing more. stdout is reserved for the handshake line.
//!
//! The level comes from `TF_LOG_PROVIDER_PROXTALOS`, `TF_LOG_PROVIDER` or
//! `TF_LOG` (first set wins; `JSON` means trace, as in Terraform). With none
//! set nothing is written: Terraform would discard it anyway.
//!
//! Never log secrets: log names, ids and paths, not values.

use std::collections::BTreeMap;
use std::io::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The level requested by Terraform's environment, if any.
pub fn level_from_env(provider_name: &str) -> Option<Level> {
    let specific = format!("TF_LOG_PROVIDER_{}", provider_name.to_ascii_uppercase());
    let raw = [specific.as_str(), "TF_LOG_PROVIDER", "TF_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
    match raw.to_ascii_uppercase().as_str() {
        "TRACE" | "JSON" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" => Some(Level::WARN),
        "ERROR" => Some(Level::ERROR),
        _ => None,
    }
}

/// Installs the stderr JSON logger at `level` as the global subscriber.
pub fn init(module: &'static str, level: Option<Level>) {
    let Some(level) = level else { return };
    let subscriber = tracing_subscriber::registry().with(HclogLayer { module, max: level });
    // Only fails if a subscriber is already set (tests): keep that one.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// A tracing layer that writes hclog-shaped JSON lines to stderr.
pub struct HclogLayer {
    module: &'static str,
    max: Level,
}

#[derive(Default)]
struct Fields(BTreeMap<String, serde_json::Value>, Option<String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, serde_json::Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, serde_json::Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, v: serde_json::Value) {
        if field.name() == "message" {
            self.1 = Some(match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.0.insert(field.name().to_string(), v);
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for HclogLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.max
    }

    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(f);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = serde_json::Map::new();
        let level = match *event.metadata().level() {
            Level::TRACE => "trace",
            Level::DEBUG => "debug",
            Level::INFO => "info",
            Level::WARN => "warn",
            Level::ERROR => "error",
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        line.insert("@level".into(), level.into());
        line.insert("@message".into(), fields.1.take().unwrap_or_default().into());
        line.insert("@module".into(), self.module.into());
        line.insert("@timestamp".into(), timestamp().into());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<Fields>() {
                    for (k, v) in &f.0 {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        for (k, v) in fields.0 {
            line.insert(k, v);
        }
        let mut out = serde_json::Value::Object(line).to_string();
        out.push('\n');
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }
}

fn timestamp() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    time::OffsetDateTime::now_utc().format(&fmt).unwrap_or_default()
}
