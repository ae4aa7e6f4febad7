//! The key scheduler.
