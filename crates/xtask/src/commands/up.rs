//! `up` and `down`. The steps live in `environment::lifecycle`, which `demo` and `test`
//! run too.

use crate::environment::lifecycle;
use anyhow::Result;

/// Brings the environment up (idempotent: keeps whatever already runs).
pub fn up() -> Result<()> {
    lifecycle::up().map(|_| ())
}

/// Stops every process `up` started and removes the project's containers.
pub fn down() -> Result<()> {
    lifecycle::down()
}
