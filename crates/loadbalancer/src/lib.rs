//! The per-cluster HAProxy load balancer of capd-rs: its configuration (CAPD's
//! template variables, custom Go templates accepted) and its container's lifecycle
//! through any [`capd_runtime::ContainerRuntime`].

pub mod config;
mod error;
pub mod labels;
mod lb;
pub mod template;

pub use config::{
    BackendServer, ConfigData, SourceError, TemplateFuture, TemplateSource, CONFIG_PATH,
    CONTROL_PLANE_PORT, DEFAULT_TEMPLATE, STATS_PORT,
};
pub use error::{Error, Result};
pub use lb::{LoadBalancer, LoadBalancerSpec, LoadBalancerStatus, DEFAULT_IMAGE, DEFAULT_NETWORK};
