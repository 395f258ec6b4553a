//! interlocks
