//! Logs for unattended runs: one `tracing` subscriber writing to stderr, as
//! human-readable text or as one JSON object per line, with its level taken
//! from `--log-level` or `RUST_LOG`.
//!
//! What gets logged is decided where things happen (the engine logs one line
//! per request at debug level, the run's start and end at info) with
//! `tracing::` macros; this module only installs the subscriber. It does not
//! draw progress, and it does not redact: nothing we log carries credentials,
//! and the AWS SDK redacts `Authorization` and `X-Amz-Security-Token` in its
//! own trace output (both checked by `tests/integration/observability.rs`).

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// The filter used when neither `--log-level` nor `RUST_LOG` is given: our
/// warnings and everybody's errors, so that an interactive run's stderr holds
/// little more than the progress bar. (The SDK's credential chain warns at
/// length about every provider it tries; the engine already reports a
/// credentials failure, with its cause, as the reason the run aborted.)
pub(crate) const DEFAULT_FILTER: &str = "error,sechub_triage=warn";

/// Logging options, accepted before or after the subcommand.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct LogArgs {
    /// Log line format on stderr.
    #[arg(
        long,
        value_enum,
        default_value_t,
        global = true,
        help_heading = "Logging"
    )]
    pub(crate) log_format: LogFormat,
    /// sechub-triage's log level (error, warn, info, debug, trace; other
    /// crates stay at error), or `tracing` filter directives such as
    /// `info,aws_smithy_runtime=debug` [default: RUST_LOG, else warn].
    #[arg(long, value_name = "LEVEL", global = true, help_heading = "Logging")]
    pub(crate) log_level: Option<String>,
}

/// `--log-format` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// `timestamp LEVEL target: message key=value ...`
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`
    /// and the event's fields at the top level.
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogSetupError {
    /// `--log-level` is neither a level nor valid filter directives.
    #[error("invalid --log-level {value:?}: {reason}")]
    Level {
        /// The value given.
        value: String,
        /// What the filter parser said.
        reason: String,
    },
}

/// Turns `--log-level` (or, without it, `RUST_LOG`) into a filter.
///
/// A bare level applies to sechub-triage's own events only and keeps every
/// other crate at `error` (or `off`): at `debug` the SDK and hyper would
/// otherwise print several lines per request, burying ours. Anything else is taken as full `tracing` filter directives, as is
/// `RUST_LOG`, for when the SDK's own logs are wanted.
pub(crate) fn filter_for(
    log_level: Option<&str>,
    rust_log: Option<&str>,
) -> Result<EnvFilter, LogSetupError> {
    let Some(value) = log_level.map(str::trim) else {
        // An unparsable RUST_LOG is not worth refusing to run a nightly job
        // over: fall back to the default (the variable may be meant for
        // another program).
        return Ok(rust_log
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| EnvFilter::try_new(s).ok())
            .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER)));
    };
    let directives = match value.parse::<LevelFilter>() {
        Ok(level) => {
            let others = level.min(LevelFilter::ERROR);
            format!("{others},sechub_triage={level}")
        }
        Err(_) => {
            // `tracing` takes a bare word as a target at every level, so a
            // misspelt level (`dbug`) would silently turn every warning
            // off: each directive must be a level or say `target=level`.
            if let Some(bad) = value
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .find(|d| !d.contains('=') && d.parse::<LevelFilter>().is_err())
            {
                return Err(LogSetupError::Level {
                    value: value.to_owned(),
                    reason: format!(
                        "{bad:?} is not a level (error, warn, info, debug, trace, off) nor a \
                         `target=level` directive"
                    ),
                });
            }
            value.to_owned()
        }
    };
    EnvFilter::try_new(&directives).map_err(|e| LogSetupError::Level {
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// Installs the process-wide subscriber. Called once, before any work; a
/// second call (in-process tests) leaves the first subscriber in place.
pub(crate) fn init(args: &LogArgs) -> Result<(), LogSetupError> {
    use std::io::IsTerminal;
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter_for(args.log_level.as_deref(), rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only if a subscriber is already set: keep that one.
    let _ = match args.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: &EnvFilter) -> String {
        f.to_string()
    }

    #[test]
    fn a_bare_level_applies_to_our_crate_and_caps_the_others_at_error() {
        let f = filter_for(Some("debug"), Some("trace")).unwrap();
        let s = render(&f);
        assert!(s.contains("sechub_triage=debug"), "{s}");
        assert!(s.starts_with("error") || s.contains(",error"), "{s}");
        assert!(
            !s.contains("trace"),
            "RUST_LOG is ignored when the flag is given: {s}"
        );
        let s = render(&filter_for(Some("off"), None).unwrap());
        assert!(
            s.contains("sechub_triage=off") && !s.contains("error"),
            "{s}"
        );
    }

    #[test]
    fn directives_are_taken_as_they_are() {
        let f = filter_for(Some("info,aws_smithy_runtime=debug"), None).unwrap();
        let s = render(&f);
        assert!(s.contains("aws_smithy_runtime=debug"), "{s}");
    }

    #[test]
    fn rust_log_applies_without_the_flag_and_bad_values_fall_back() {
        let s = render(&filter_for(None, Some("sechub_triage=trace")).unwrap());
        assert!(s.contains("sechub_triage=trace"), "{s}");
        let default = render(&EnvFilter::new(DEFAULT_FILTER));
        let s = render(&filter_for(None, Some("=====")).unwrap());
        assert_eq!(s, default);
        let s = render(&filter_for(None, None).unwrap());
        assert_eq!(s, default);
        assert!(default.contains("sechub_triage=warn"), "{default}");
    }

    #[test]
    fn a_bad_flag_value_is_an_error_naming_it() {
        let e = filter_for(Some("loud=="), None).unwrap_err();
        assert!(e.to_string().contains("\"loud==\""), "{e}");
        // A misspelt level is not taken for a target (which would silence
        // every warning).
        for bad in ["dbug", "warning", "info,aws_smithy_runtime"] {
            let e = filter_for(Some(bad), None).unwrap_err();
            assert!(e.to_string().contains("is not a level"), "{bad}: {e}");
        }
        assert!(filter_for(Some("WARN"), None).is_ok());
    }
}
