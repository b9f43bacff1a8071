use crate::patch::PatchError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("load balancer: {0}")]
    LoadBalancer(#[source] capd_loadbalancer::Error),
    #[error("container runtime: {0}")]
    Runtime(#[from] capd_runtime::Error),
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// The reconcile failed and writing back what it did failed too: both are reported.
    #[error("{reconcile}; and then {patch}")]
    ReconcileAndPatch {
        reconcile: Box<Error>,
        patch: PatchError,
    },
    #[error("{kind} {namespace}/{name}: {message}")]
    Invalid {
        kind: std::borrow::Cow<'static, str>,
        namespace: String,
        name: String,
        message: String,
    },
}

impl From<capd_loadbalancer::Error> for Error {
    /// A custom template's own error (ours, boxed by the load balancer) comes back as
    /// itself: a missing ConfigMap stays `Invalid`, naming the object and the field.
    fn from(e: capd_loadbalancer::Error) -> Self {
        match e {
            capd_loadbalancer::Error::TemplateSource { origin, source } => match source
                .downcast::<Error>()
            {
                Ok(ours) => *ours,
                Err(source) => {
                    Error::LoadBalancer(capd_loadbalancer::Error::TemplateSource { origin, source })
                }
            },
            other => Error::LoadBalancer(other),
        }
    }
}

impl Error {
    /// Bad input in `obj`: the message names the field.
    pub fn invalid<K: kube::Resource<DynamicType = ()>>(
        obj: &K,
        message: impl Into<String>,
    ) -> Self {
        let meta = obj.meta();
        Error::Invalid {
            kind: K::kind(&()),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            message: message.into(),
        }
    }

    /// The API server (or the path to it) was unavailable: connection refused or reset,
    /// a timeout, 429 or a 5xx. Retried at short intervals, so reconciles resume within
    /// seconds of the server answering again instead of after a backoff that grew
    /// through the outage.
    pub fn api_unavailable(&self) -> bool {
        match self {
            Error::Kube(e) => kube_unavailable(e),
            Error::Patch(PatchError::Api { source, .. }) => kube_unavailable(source),
            Error::ReconcileAndPatch { reconcile, patch } => {
                reconcile.api_unavailable()
                    || matches!(patch, PatchError::Api { source, .. } if kube_unavailable(source))
            }
            _ => false,
        }
    }

    /// The engine error when the container engine did not answer (its message names
    /// the address).
    pub fn engine_unreachable(&self) -> Option<&capd_runtime::Error> {
        match self {
            Error::Runtime(e) | Error::LoadBalancer(capd_loadbalancer::Error::Runtime(e))
                if e.is_unreachable() =>
            {
                Some(e)
            }
            Error::ReconcileAndPatch { reconcile, .. } => reconcile.engine_unreachable(),
            _ => None,
        }
    }

    /// A short, bounded label for the errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::LoadBalancer(_) => "loadbalancer",
            Error::Runtime(_) => "runtime",
            Error::Patch(_) => "patch",
            Error::ReconcileAndPatch { .. } => "reconcile_and_patch",
            Error::Invalid { .. } => "invalid",
        }
    }

    /// Joins a reconcile result with the result of the final patch.
    pub fn combine<T>(
        reconcile: Result<T, Error>,
        patch: Result<usize, PatchError>,
    ) -> Result<T, Error> {
        match (reconcile, patch) {
            (Ok(v), Ok(_)) => Ok(v),
            (Ok(_), Err(p)) => Err(Error::Patch(p)),
            (Err(e), Ok(_)) => Err(e),
            (Err(e), Err(p)) => Err(Error::ReconcileAndPatch {
                reconcile: Box::new(e),
                patch: p,
            }),
        }
    }
}

fn kube_unavailable(e: &kube::Error) -> bool {
    match e {
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            ..Default::default()
        }))
    }

    #[test]
    fn only_an_unavailable_api_server_counts_as_unavailable() {
        assert!(Error::Kube(api(503)).api_unavailable());
        assert!(Error::Kube(api(429)).api_unavailable());
        assert!(Error::Kube(kube::Error::Service("connection refused".into())).api_unavailable());
        assert!(!Error::Kube(api(409)).api_unavailable());
        assert!(!Error::Kube(api(404)).api_unavailable());
        let patch = PatchError::Api {
            what: "status",
            kind: "DockerMachine".into(),
            namespace: "ns".into(),
            name: "m".into(),
            source: api(504),
        };
        assert!(Error::Patch(patch).api_unavailable());
        let invalid = Error::Invalid {
            kind: "DockerMachine".into(),
            namespace: "ns".into(),
            name: "m".into(),
            message: "bad".into(),
        };
        assert!(!invalid.api_unavailable());
    }
}
