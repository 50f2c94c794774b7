//! Integration test binaries live under tests/.
