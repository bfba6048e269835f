//! Applying a rule tree with tc: see the module docs once built.
