//! One module per subcommand.

pub mod audit;
pub mod clients;
pub mod demo;
pub mod import;
pub mod init;
pub mod keys;
pub mod serve;
pub mod users;
