//! Userspace delaying TCP proxy: see the module docs once built.
