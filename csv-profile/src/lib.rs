//! Streaming CSV profiling.
