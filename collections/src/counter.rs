//! placeholder
pub struct TCounter;
