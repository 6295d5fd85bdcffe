//! Cairn HTTP layer (in progress).
