use crate::template::TemplateError;

/// Why a load-balancer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Runtime(#[from] capd_runtime::Error),

    #[error("load balancer configuration template: {0}")]
    Template(#[from] TemplateError),

    /// A custom configuration template could not be read where it lives; `source` is
    /// the [`crate::TemplateSource`]'s own error.
    #[error("configuration template from {origin}: {source}")]
    TemplateSource {
        origin: String,
        source: crate::SourceError,
    },

    /// A custom configuration template was read but does not render.
    #[error("configuration template from {origin} does not render: {source}")]
    CustomTemplate {
        origin: String,
        source: TemplateError,
    },

    /// The load-balancer container does not exist (yet).
    #[error("load balancer container {name} does not exist")]
    Missing { name: String },

    /// A container of that name exists but belongs to another cluster; it is left alone.
    #[error("container {name} belongs to another cluster ({reason}); not touching it")]
    Foreign { name: String, reason: String },

    /// What was read back differs from what was written; HAProxy is not reloaded.
    #[error("configuration written to {name} did not read back identically ({written} bytes written, {read} read)")]
    ConfigNotApplied {
        name: String,
        written: usize,
        read: usize,
    },

    /// HAProxy rejected a rendered configuration (custom templates only).
    #[error("HAProxy rejects the rendered configuration for {name}: {output}")]
    InvalidConfig { name: String, output: String },

    /// Signalling HAProxy to reload (from inside the container) failed.
    #[error("reloading HAProxy in {name} failed: {output}")]
    ReloadFailed { name: String, output: String },

    /// The container runs but has no address of the wanted family on the network.
    #[error("load balancer {name} has no {family} address on network {network}")]
    NoAddress {
        name: String,
        network: String,
        family: &'static str,
    },
}

impl Error {
    /// True when retrying later is the right reaction (engine down, container not yet there).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Runtime(e) => {
                e.is_unreachable()
                    || e.is_conflict()
                    || matches!(e, capd_runtime::Error::Timeout { .. })
            }
            Error::Missing { .. } | Error::NoAddress { .. } | Error::ConfigNotApplied { .. } => {
                true
            }
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
