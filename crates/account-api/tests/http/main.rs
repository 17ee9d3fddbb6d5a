//! The real server over HTTP, on each backend: every rejection as a JSON error with field-level
//! messages and nothing written (`errors`), the OpenAPI document against the router's routes
//! (`openapi`), per-key rate limits and quota refusals with `Retry-After` (`limits`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod errors;
mod limits;
mod openapi;
mod support;
