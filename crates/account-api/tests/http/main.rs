//! The real server over HTTP, on each backend: every rejection as a JSON error with field-level
//! messages and nothing written (`errors`), the OpenAPI document against the router's routes
//! (`openapi`), per-key rate limits and quota refusals with `Retry-After` (`limits`), the
//! edge's timeouts, early 413 and client address (`edge`), objects and enums exactly as
//! documented (`strict`), heartbeats and a worker killed mid-run (`leases`), retries under one
//! `Idempotency-Key` (`idempotency`), the audit log's pages, export and authority (`audit`),
//! webhook endpoints and their secrets (`webhooks`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod accounts_reads;
mod accounts_story;
mod audit;
mod edge;
mod erasure;
mod errors;
mod health;
mod hostile;
mod idempotency;
mod instances;
mod keys;
mod leases;
mod limit_overrides;
mod limits;
mod openapi;
mod plans;
mod platform;
mod process;
mod replicas;
mod shutdown;
mod sign_in;
mod story;
mod strict;
mod support;
mod trials;
mod webhook_delivery;
mod webhooks;
