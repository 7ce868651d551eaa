//! Logging: `RUST_LOG`-style filtering, JSON lines when `TENANTD_LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    init_with_default("info");
}

/// Like [`init`], with another level when neither `TENANTD_LOG` nor `RUST_LOG` is set.
pub fn init_with_default(level: &str) {
    let filter = EnvFilter::try_from_env("TENANTD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(level));
    let json = std::env::var("TENANTD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
}
