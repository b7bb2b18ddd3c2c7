//! placeholder
pub struct TQueue;
