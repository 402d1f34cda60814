//! The Gatehouse agent: runs beside one service instance and answers the console over mutual
//! TLS. This crate holds its configuration; the API server, log tailers and actions build on it.

pub mod config;

pub use config::{AgentConfig, ConfigError};
