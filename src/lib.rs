//! sdload: load testing and benchmarking for authentication token endpoints.
//!
//! Data flows one way (see `DESIGN.md` section 3):
//!
//! ```text
//! scenario file + CLI flags ──► Plan (validated, defaults resolved)          scenario, plan
//! Plan ──► engine: workers ──► one request (credential + kind)                engine, credentials
//! request ──► transport ──► response ──► token::parse ──► Outcome              transport, token, outcome
//! Outcome + latency ──► Recorder (per worker, merged at the end)              recorder
//! Recorder ──► Report (the single source of every figure)                     report
//! Report ──► exporters (terminal text, JSON) ; Report + thresholds ──► exit   export, exit
//! ```
//!
//! The mock ServiceDesk server (`mock_server`) is the embedded default target and the tests'
//! real HTTP peer.

pub mod app;
pub mod capacity;
pub mod cli;
pub mod compare;
pub mod credentials;
pub mod duration;
pub mod engine;
pub mod exit;
pub mod export;
pub mod http1;
pub mod limits;
pub mod mock_server;
pub mod outcome;
pub mod plan;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod scenario;
pub mod secrets;
pub mod target;
pub mod thresholds;
pub mod token;
pub mod transport;
