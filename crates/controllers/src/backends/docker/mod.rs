//! The docker backend: a load-balancer container per cluster, a node container per machine.
//! Its functions take the Docker*-shaped view of whichever kind the controller reconciles.

pub mod cluster;
pub mod load_balancer;
pub mod machine;
pub mod machine_pool;
