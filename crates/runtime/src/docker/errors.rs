//! Maps bollard's errors onto the engine-neutral [`Error`].

use std::error::Error as _;
use std::time::Duration;

use bollard::errors::Error as BollardError;

use crate::error::{Error, ObjectKind};

/// What a call was about, so a 404 or a dropped connection can be named properly.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub endpoint: &'a str,
    pub operation: &'static str,
    pub kind: ObjectKind,
    pub name: &'a str,
    pub request_timeout: Duration,
}

pub fn map(err: BollardError, ctx: Ctx<'_>) -> Error {
    match err {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => match status_code {
            404 => match ctx.kind {
                ObjectKind::Image => Error::ImageMissing {
                    image: ctx.name.to_string(),
                    reason: message,
                },
                kind => Error::NotFound {
                    kind,
                    name: ctx.name.to_string(),
                },
            },
            409 => Error::Conflict {
                operation: ctx.operation,
                message,
            },
            // Podman's compatibility API answers some conflicts with a 500.
            500 if is_podman_conflict(&message) => Error::Conflict {
                operation: ctx.operation,
                message,
            },
            status => Error::Engine {
                operation: ctx.operation,
                status,
                message,
            },
        },
        BollardError::RequestTimeoutError => Error::Timeout {
            operation: ctx.operation,
            after: ctx.request_timeout,
        },
        BollardError::HyperLegacyError { err } => {
            if err.is_connect() || is_connection_lost(&err) {
                unreachable(ctx, chain(&err))
            } else {
                Error::Transport {
                    operation: ctx.operation,
                    message: chain(&err),
                }
            }
        }
        BollardError::HyperResponseError { err }
            if err.is_closed() || err.is_incomplete_message() || err.is_canceled() =>
        {
            unreachable(ctx, chain(&err))
        }
        BollardError::SocketNotFoundError(path) => {
            unreachable(ctx, format!("socket {path} does not exist"))
        }
        BollardError::IOError { err } if is_unreachable_io(&err) => {
            unreachable(ctx, err.to_string())
        }
        other => Error::Transport {
            operation: ctx.operation,
            message: chain(&other),
        },
    }
}

/// Podman 4 messages for what Docker reports as 409 Conflict.
fn is_podman_conflict(message: &str) -> bool {
    message.contains("is already in use") || message.contains("container state improper")
}

fn unreachable(ctx: Ctx<'_>, reason: String) -> Error {
    Error::EngineUnreachable {
        endpoint: ctx.endpoint.to_string(),
        reason,
    }
}

/// The engine hung up before answering: it went away mid-call.
fn is_connection_lost(err: &hyper_util::client::legacy::Error) -> bool {
    let mut source = err.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_closed() || h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if is_unreachable_io(io) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

fn is_unreachable_io(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        NotFound
            | ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | BrokenPipe
            | TimedOut
            | NotConnected
    )
}

/// An error with its causes, `a: b: c`, without repeating identical messages.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(kind: ObjectKind) -> Ctx<'static> {
        Ctx {
            endpoint: "unix:///x.sock",
            operation: "op",
            kind,
            name: "thing",
            request_timeout: Duration::from_secs(1),
        }
    }

    fn server(status_code: u16) -> BollardError {
        BollardError::DockerResponseServerError {
            status_code,
            message: "msg".into(),
        }
    }

    #[test]
    fn maps_status_codes() {
        assert!(matches!(
            map(server(404), ctx(ObjectKind::Container)),
            Error::NotFound {
                kind: ObjectKind::Container,
                ..
            }
        ));
        assert!(matches!(
            map(server(404), ctx(ObjectKind::Image)),
            Error::ImageMissing { .. }
        ));
        assert!(map(server(409), ctx(ObjectKind::Container)).is_conflict());
        let podman_in_use = BollardError::DockerResponseServerError {
            status_code: 500,
            message: "container create: the container name \"x\" is already in use by 79c8".into(),
        };
        assert!(map(podman_in_use, ctx(ObjectKind::Container)).is_conflict());
        assert!(matches!(
            map(server(500), ctx(ObjectKind::Container)),
            Error::Engine { status: 500, .. }
        ));
    }

    #[test]
    fn maps_connection_failures_to_unreachable() {
        let io = BollardError::IOError {
            err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let e = map(io, ctx(ObjectKind::Container));
        assert!(e.is_unreachable(), "{e}");
        assert!(e.to_string().contains("unix:///x.sock"), "{e}");
        assert!(map(
            BollardError::SocketNotFoundError("/x.sock".into()),
            ctx(ObjectKind::Container)
        )
        .is_unreachable());
        assert!(matches!(
            map(
                BollardError::RequestTimeoutError,
                ctx(ObjectKind::Container)
            ),
            Error::Timeout { .. }
        ));
    }
}
