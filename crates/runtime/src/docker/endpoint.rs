//! Where the engine listens, from a `DOCKER_HOST`-style address.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Default engine socket when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// A parsed engine address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix:///path/to/socket`
    Unix(PathBuf),
    /// `tcp://host:port` or `http://host:port` (plain HTTP; TLS is not supported).
    Tcp { authority: String },
}

impl Endpoint {
    pub fn parse(host: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidEndpoint {
            endpoint: host.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(invalid(
                    "a unix socket path must be absolute (unix:///path)",
                ));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let rest = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .ok_or_else(|| invalid("supported schemes are unix://, tcp:// and http://"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(invalid("expected tcp://HOST:PORT"));
        }
        // A bare host gets Docker's conventional plain-HTTP port.
        let has_port = match authority.rsplit_once(':') {
            Some((h, p)) => {
                !h.is_empty()
                    && !p.is_empty()
                    && p.chars().all(|c| c.is_ascii_digit())
                    && !h.ends_with(':')
            }
            None => false,
        } && !(authority.starts_with('[') && authority.ends_with(']'));
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:2375")
        };
        Ok(Endpoint::Tcp { authority })
    }

    /// `$DOCKER_HOST`, else the default socket.
    pub fn from_env() -> Result<Self> {
        match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => Self::parse(&h),
            _ => Self::parse(DEFAULT_DOCKER_HOST),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { authority } => write!(f, "tcp://{authority}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock").unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375").unwrap(),
            Endpoint::Tcp {
                authority: "127.0.0.1:2375".into()
            }
        );
        assert_eq!(
            Endpoint::parse("http://localhost:1234/").unwrap(),
            Endpoint::Tcp {
                authority: "localhost:1234".into()
            }
        );
        assert_eq!(
            Endpoint::parse("tcp://docker").unwrap(),
            Endpoint::Tcp {
                authority: "docker:2375".into()
            }
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:2375").unwrap(),
            Endpoint::Tcp {
                authority: "[::1]:2375".into()
            }
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]").unwrap(),
            Endpoint::Tcp {
                authority: "[::1]:2375".into()
            }
        );
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for bad in [
            "ssh://host",
            "unix://relative.sock",
            "tcp://",
            "npipe:////./pipe/docker",
            "/var/run/docker.sock",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidEndpoint { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn displays_round_trip() {
        for h in ["unix:///run/podman/podman.sock", "tcp://127.0.0.1:2375"] {
            assert_eq!(Endpoint::parse(h).unwrap().to_string(), h);
        }
    }
}
