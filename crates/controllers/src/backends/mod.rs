//! Backends: what the controllers' flows call to make the infrastructure exist. One today,
//! docker (containers in a Docker engine), serving the Docker* kinds and `spec.backend.docker`
//! of the Dev* kinds alike.

pub mod docker;
