//! Performance: scores against sklearn fixtures, label-free estimates (CBPE), calibration
//! on the baseline's joint sample.

mod calibration;
mod cbpe;
mod fixtures;
