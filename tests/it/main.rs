//! Integration tests against a real Docker engine (`scripts/test.sh` starts one).
//! One binary, shared helpers in `support`.

mod flaky;
mod support;

mod agent_channel;
mod background;
mod cli;
mod clients;
mod cluster;
mod compat;
mod connection;
mod copy;
mod e2b;
mod e2b_cluster;
mod e2b_js;
mod e2b_python;
mod examples;
mod faults;
mod gc;
mod images;
mod kernel;
mod kernel_languages;
mod languages;
mod libraries;
mod lifecycle;
mod mcp;
mod minimal_images;
mod pause;
mod plots;
mod pool;
mod reset;
mod run;
mod scoped;
mod security;
mod server;
mod session_ops;
mod snapshots;
mod streaming;
mod template;
mod timeout;
mod tools;

mod http_attacks;
mod http_engine;
mod http_environment;
mod http_files;
mod http_keys;
mod http_limits;
mod http_one_shot;
mod http_packages;
mod http_processes;
mod http_run;
mod http_sessions;
mod http_snapshots;
mod http_stream;
mod http_system;
