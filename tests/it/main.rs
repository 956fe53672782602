//! Integration tests against a real Docker engine (`scripts/test.sh` starts one).
//! One binary, shared helpers in `support`.

mod flaky;
mod support;

mod cli;
mod connection;
mod copy;
mod examples;
mod faults;
mod gc;
mod images;
mod kernel;
mod kernel_languages;
mod languages;
mod libraries;
mod lifecycle;
mod plots;
mod pool;
mod run;
mod scoped;
mod security;
mod server;
mod session_ops;
mod streaming;
mod template;
mod timeout;
