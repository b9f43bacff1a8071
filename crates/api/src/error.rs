use std::path::PathBuf;

/// Errors of the manifest generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} does not serialize to JSON: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("{what} does not serialize to YAML: {source}")]
    Yaml {
        what: String,
        source: serde_yaml_ng::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
