//! The agent binary against real processes and files on this machine (run as root).

mod helpers;

mod cancel;
mod confinement;
mod detached;
mod exec_failure;
mod files;
mod flow;
mod frames;
mod output_limit;
mod reset;
mod signal_all;
mod socket;
mod spawn;
mod stdin;
mod timeout;
mod usage;
