//! `api_keys`.
