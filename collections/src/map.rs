//! placeholder
pub struct TMap;
