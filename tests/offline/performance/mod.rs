//! Performance: scores against sklearn fixtures, label-free estimates (CBPE), calibration
//! on the baseline's joint sample, and `mlmon performance` end to end.

mod calibration;
mod cbpe;
mod cli;
mod fixtures;
