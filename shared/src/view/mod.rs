//! The optimistic view.
