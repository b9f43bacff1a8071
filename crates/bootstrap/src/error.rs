//! Why bootstrap data could not be turned into actions.
//!
//! Every variant names what failed (a file path, a field, a position) so the
//! DockerMachine controller can put the message in a condition as it is.

use std::fmt;

/// A position in the input, 1-based, when the parser reported one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Formats an optional position as " at line L, column C" or nothing.
struct At(Option<Position>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " at {p}"),
            None => Ok(()),
        }
    }
}

/// Everything that can be wrong with bootstrap data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Secret's `format` is neither `cloud-config` nor `ignition`.
    #[error("unknown bootstrap data format {0:?} (expected \"cloud-config\" or \"ignition\")")]
    UnknownFormat(String),

    /// The cloud-config document is not valid YAML, or not a mapping.
    #[error("cloud-config is not valid YAML{}: {message}", At(*.position))]
    InvalidYaml {
        position: Option<Position>,
        message: String,
    },

    /// The Ignition config is not valid JSON, or not an object.
    #[error("Ignition config is not valid JSON{}: {message}", At(*.position))]
    InvalidJson {
        position: Option<Position>,
        message: String,
    },

    /// A key holds a value of the wrong shape, e.g. `runcmd[2]` is a mapping.
    /// `field` is a path such as `write_files[3].owner` or `storage.files[0].mode`.
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },

    /// A file path is empty, a directory, or has a NUL byte (or, for Ignition, is relative).
    #[error("{field}: invalid path {path:?}: {reason}")]
    InvalidPath {
        field: String,
        path: String,
        reason: String,
    },

    /// A `write_files` entry names an encoding this crate does not know.
    #[error("write_files entry {path:?}: unknown encoding {encoding:?} (expected one of: text/plain, b64, base64, gz, gzip, gz+b64, gz+base64, gzip+b64, gzip+base64)")]
    UnknownEncoding { path: String, encoding: String },

    /// A file's content is declared base64 but does not decode.
    #[error("file {path:?}: content is not valid base64: {reason}")]
    InvalidBase64 { path: String, reason: String },

    /// A file's content is declared gzip but does not decompress.
    #[error("file {path:?}: content is not valid gzip: {reason}")]
    InvalidGzip { path: String, reason: String },

    /// Decompressing a file's content went past [`crate::MAX_FILE_SIZE`].
    #[error("file {path:?}: decompressed content is larger than {limit} bytes")]
    ContentTooLarge { path: String, limit: usize },

    /// A file mode is not an octal string (cloud-config) or an integer in 0..=0o7777 (Ignition).
    #[error("file {path:?}: invalid permissions {value:?}: {reason}")]
    BadPermissions {
        path: String,
        value: String,
        reason: String,
    },

    /// `ignition.version` is missing or not 2.x (the Flatcar v2.3 dialect CABPK emits).
    #[error("unsupported Ignition version {0:?} (supported: 2.x, as emitted by the kubeadm bootstrap provider)")]
    UnsupportedIgnitionVersion(String),

    /// An Ignition file's `contents.source` is a URL this crate cannot read without I/O.
    #[error("file {path:?}: unsupported contents source scheme {scheme:?} (only data: URLs can be used)")]
    UnsupportedSource { path: String, scheme: String },

    /// An Ignition file's `contents.source` is a malformed `data:` URL.
    #[error("file {path:?}: invalid data URL: {reason}")]
    InvalidDataUrl { path: String, reason: String },

    /// An Ignition file's `contents.compression` is not `gzip`.
    #[error("file {path:?}: unsupported compression {compression:?} (expected \"gzip\" or none)")]
    UnsupportedCompression { path: String, compression: String },

    /// The kubeadm configuration CAPD patches for Docker (see [`crate::Options::kubeadm_fixups`]) cannot be read.
    #[error("file {path:?}: invalid kubeadm configuration: {reason}")]
    InvalidKubeadmConfig { path: String, reason: String },
}

impl Error {
    pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
