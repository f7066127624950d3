//! The `timeouts { create = "20m" ... }` block users know from other
//! providers, and Go-style duration strings (`"90s"`, `"1h30m"`).

use std::time::Duration;

use super::diag::{AttributePath, Diagnostics};
use super::schema::{Attribute, NestedBlock, Nesting};
use super::value::Value;

/// Which operations a resource's `timeouts` block offers.
#[derive(Clone, Copy, Debug)]
pub enum Operation {
    /// `create`
    Create,
    /// `read`
    Read,
    /// `update`
    Update,
    /// `delete`
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// The `timeouts` block for the given operations, documenting each default.
pub fn block(ops: &[(Operation, Duration)]) -> NestedBlock {
    NestedBlock::new(
        "timeouts",
        Nesting::Single,
        "How long each operation may take before it fails, as a duration string such as `\"30s\"`, `\"20m\"` or `\"1h30m\"`.",
        ops.iter()
            .map(|(op, default)| {
                Attribute::string(op.name()).optional().description(format!(
                    "Time limit for {}. Default `{}`.",
                    op.name(),
                    format_duration(*default)
                ))
            })
            .collect(),
    )
}

/// The timeout for `op` from a config or state value holding a `timeouts`
/// block, else `default`.
pub fn get(v: &Value, op: Operation, default: Duration) -> Duration {
    v.attr("timeouts").attr(op.name()).as_str().and_then(|s| parse_duration(s).ok()).unwrap_or(default)
}

/// Validates every duration in the `timeouts` block of `config`.
pub fn validate(config: &Value, diags: &mut Diagnostics) {
    if let Some(m) = config.attr("timeouts").as_map() {
        for (k, v) in m {
            if let Some(s) = v.as_str()
                && let Err(e) = parse_duration(s)
            {
                diags.error_at(AttributePath::attr("timeouts").and_attr(k), "Invalid duration", e);
            }
        }
    }
}

/// The longest duration accepted anywhere (ten years: certificate lifetimes
/// need that much; timeouts never do).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// Parses Go-style durations: a sequence of `<number><unit>` with units
/// `ms`, `s`, `m`, `h` (e.g. `"1h30m"`, `"90s"`, `"1.5h"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration; write it like \"30s\", \"20m\" or \"1h30m\".");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        total += secs;
        rest = &rest[unit_end..];
    }
    // Anything longer is a typo, and bounding it keeps `Instant + d` and
    // `Duration::from_secs_f64` far from overflowing.
    if !total.is_finite() || total > MAX_DURATION.as_secs_f64() {
        return Err(format!("{s:?} is longer than the maximum of {}.", format_duration(MAX_DURATION)));
    }
    Ok(Duration::from_secs_f64(total))
}

/// `20m`, `1h30m`, `45s` ([`crate::wait::format`]).
pub fn format_duration(d: Duration) -> String {
    crate::wait::format(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "m", "10d", "1h 30m", "-5s", "99999999999999999h", "1e400s", "90000h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
    }

    #[test]
    fn get_and_validate() {
        let cfg = Value::object([("timeouts", Value::object([("create", "5m".into()), ("delete", "soon".into())]))]);
        assert_eq!(get(&cfg, Operation::Create, Duration::from_secs(1)), Duration::from_secs(300));
        assert_eq!(get(&cfg, Operation::Read, Duration::from_secs(7)), Duration::from_secs(7));
        let mut d = Diagnostics::new();
        validate(&cfg, &mut d);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some("timeouts.delete"));
    }
}
