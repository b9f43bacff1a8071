//! Helpers every other part uses: where things live, named steps, daemons and
//! background jobs, the `docker` CLI.

pub mod background;
pub mod docker;
pub mod paths;
pub mod procs;
pub mod steps;
