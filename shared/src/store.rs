//! The storage port.
