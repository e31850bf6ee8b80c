//! One module per subcommand.

pub mod access;
pub mod archive;
pub mod audit;
pub mod backup;
pub mod clients;
pub mod deid;
pub mod demo;
pub mod emergency;
pub mod import;
pub mod init;
pub mod keys;
pub mod policy;
pub mod review;
pub mod serve;
pub mod users;
