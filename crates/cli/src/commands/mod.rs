//! One module per subcommand.

pub mod demo;
pub mod import;
pub mod init;
pub mod keys;
pub mod serve;
pub mod users;
