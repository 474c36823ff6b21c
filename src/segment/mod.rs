//! Segment files (in progress).
