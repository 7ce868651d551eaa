//! HTTP: the JSON API, the pages, and what they share (cookies, extractors, headers).

pub mod api;
pub mod extract;
pub mod openapi;
pub mod pages;
