//! The subcommands, one module each. They build on `environment`, `builds` and
//! `support`, never on each other.

pub mod bench;
pub mod chaos;
pub mod demo;
pub mod env;
pub mod release;
pub mod templates;
pub mod test;
pub mod up;
