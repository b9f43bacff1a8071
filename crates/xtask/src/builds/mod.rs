//! What the environment runs, built from pinned versions and cached: Go binaries,
//! container images and the Kubernetes node image.

pub mod gobuild;
pub mod images;
pub mod nodeimage;
pub mod pins;
pub mod previous;
