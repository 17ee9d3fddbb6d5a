//! `memory_pins` driver tests.
