use std::time::Duration;

/// What went wrong talking to a container engine. Controllers branch on the variant
/// (requeue on [`Error::EngineUnreachable`], create on [`Error::NotFound`], ...), so
/// engine-specific errors are mapped into these and never leak out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing answers at the engine's address (socket missing, connection refused,
    /// connect timed out, connection dropped before a response).
    #[error("container engine at {endpoint} is unreachable: {reason}")]
    EngineUnreachable { endpoint: String, reason: String },

    /// The engine address (`DOCKER_HOST`) cannot be used.
    #[error("container engine address {endpoint:?} is not usable: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },

    /// The named object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound { kind: ObjectKind, name: String },

    /// The image is not present locally and could not be pulled.
    #[error("image {image} is not present and could not be pulled: {reason}")]
    ImageMissing { image: String, reason: String },

    /// The name is taken or the object is in a state that forbids the operation
    /// (e.g. exec into a stopped container).
    #[error("{operation}: conflict: {message}")]
    Conflict {
        operation: &'static str,
        message: String,
    },

    /// A command run inside a container exited non-zero.
    #[error(
        "command `{command}` in container {container} exited with code {exit_code}: {output_tail}"
    )]
    ExecFailed {
        container: String,
        command: String,
        exit_code: i64,
        /// The last lines of stderr and stdout, for condition messages.
        output_tail: String,
    },

    /// The engine accepted the connection but gave no answer in time.
    #[error("{operation}: no answer from the container engine within {after:?}")]
    Timeout {
        operation: &'static str,
        after: Duration,
    },

    /// A file read back from a container was not a regular file or was malformed.
    #[error("{operation}: {message}")]
    InvalidContent {
        operation: &'static str,
        message: String,
    },

    /// Any other refusal by the engine.
    #[error("{operation}: container engine answered {status}: {message}")]
    Engine {
        operation: &'static str,
        status: u16,
        message: String,
    },

    /// A failure on the connection or in decoding the engine's answer.
    #[error("{operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
}

/// The kind of object an [`Error::NotFound`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Container,
    Image,
    Network,
    File,
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObjectKind::Container => "container",
            ObjectKind::Image => "image",
            ObjectKind::Network => "network",
            ObjectKind::File => "file",
        })
    }
}

impl Error {
    /// True when the engine could not be reached; the caller should retry later.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::EngineUnreachable { .. })
    }

    /// True when the object the call was about does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True for a name clash or a state conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// True when the engine failed on its side (HTTP 5xx): what an engine that has just
    /// come back answers for a moment while it restores its state.
    pub fn is_server_error(&self) -> bool {
        matches!(self, Error::Engine { status, .. } if *status >= 500)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Keeps the last `max_lines` lines (and at most `max_bytes`) of command output,
/// which is what a human needs to see in a condition message.
/// `first` followed by `second` on a line of its own; `second` is left out when blank.
/// Used to put the stream that holds the error last, where [`output_tail`] keeps it.
pub fn join_streams(mut first: String, second: &str) -> String {
    if !second.trim().is_empty() {
        if !first.is_empty() && !first.ends_with('\n') {
            first.push('\n');
        }
        first.push_str(second);
    }
    first
}

pub fn output_tail(text: &str, max_lines: usize, max_bytes: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let tail = lines[lines.len().saturating_sub(max_lines)..].join("\n");
    if tail.len() <= max_bytes {
        return tail;
    }
    let mut cut = tail.len() - max_bytes;
    while !tail.is_char_boundary(cut) {
        cut += 1;
    }
    tail[cut..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(output_tail("a\nb\nc\nd\n", 2, 100), "c\nd");
        assert_eq!(output_tail("a\nb", 5, 100), "a\nb");
        assert_eq!(output_tail("", 5, 100), "");
        assert_eq!(output_tail("one line", 1, 100), "one line");
    }

    #[test]
    fn tail_caps_bytes_on_char_boundary() {
        let t = output_tail("ééééé", 3, 3);
        assert!(t.len() <= 3 && t.chars().all(|c| c == 'é'), "{t}");
    }
}
