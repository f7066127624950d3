//! `/access`: ticket login.

use super::request::{Effect, Request};

/// `POST /access/ticket` (also renews, with the current ticket as password).
pub fn ticket(username: &str, password: &str) -> Request {
    Request::post("/access/ticket").effect(Effect::Idempotent).param("username", username).param("password", password)
}
