//! The integration tests, one binary so the crate links once.

mod layers;
