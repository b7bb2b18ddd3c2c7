//! placeholder
pub struct TSet;
